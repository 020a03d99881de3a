package filter

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/plexus-router/plexus/syslog"
)

// MaxLen is the longest filter expression accepted.
const MaxLen = 4096

// Error is an invalid expression: the library's message and where in the
// expression it applies (1-based line and column, 0 when unknown).
type Error struct {
	Message string
	Line    int
	Column  int
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s (%d:%d)", e.Message, e.Line, e.Column)
}

// Check reports whether src is a valid filter expression (an *Error if
// not).
func Check(src string) error {
	_, err := Compile(src)
	return err
}

// Matcher evaluates one compiled filter expression. Not safe for
// concurrent use: give each reader its own (Compile is cheap).
type Matcher struct {
	src  string
	prog *vm.Program
	vm   vm.VM
	fast pred // the program lowered to closures, when it can be (fast.go)
	env  map[string]any
	time bool // the expression reads time: parse TIMESTAMP

	// The cells the env's interfaces point to (see the package doc).
	severity, facility                int
	hostname, app, procid, msgid, msg string
	ts                                time.Time
	sd                                []byte // the STRUCTURED-DATA field
	sdCells                           [4]string
	sdNext                            int
}

// Compile compiles src once. An invalid expression returns an *Error.
func Compile(src string) (*Matcher, error) {
	if len(src) > MaxLen {
		return nil, &Error{Message: fmt.Sprintf("filter longer than %d bytes", MaxLen)}
	}
	m := &Matcher{src: src}
	m.env = map[string]any{
		"severity": boxAt(&m.severity),
		"facility": boxAt(&m.facility),
		"hostname": boxAt(&m.hostname),
		"app":      boxAt(&m.app),
		"procid":   boxAt(&m.procid),
		"msgid":    boxAt(&m.msgid),
		"msg":      boxAt(&m.msg),
		"time":     boxAt(&m.ts),
	}
	// The compile-time env: same names and types, without the cells.
	typesEnv := map[string]any{
		"severity": 0, "facility": 0,
		"hostname": "", "app": "", "procid": "", "msgid": "", "msg": "",
		"time": time.Time{},
	}
	var uses usage
	prog, err := expr.Compile(src,
		expr.Env(typesEnv),
		expr.AsBool(),
		expr.Function("sd", m.sdFunc, new(func(string, string) string)),
		expr.Patch(&uses),
	)
	if err != nil {
		return nil, compileError(err)
	}
	m.prog, m.time = prog, uses.time
	if p, ok := lower(prog.Node()); ok {
		m.fast = p
	}
	return m, nil
}

func compileError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &Error{Message: fe.Message, Line: fe.Line, Column: fe.Column + 1}
	}
	return &Error{Message: err.Error()}
}

// String returns the expression as given.
func (m *Matcher) String() string { return m.src }

// Match reports whether the RFC 5424 message msg passes the filter. A
// message that does not parse, or whose evaluation fails, does not pass.
func (m *Matcher) Match(msg []byte) bool {
	f, ok := syslog.Parse(msg)
	if !ok {
		return false
	}
	return m.MatchFields(f)
}

// MatchFields is Match for a message already parsed.
func (m *Matcher) MatchFields(f syslog.Fields) bool {
	pri := 0
	for _, c := range f.Pri {
		pri = pri*10 + int(c-'0')
		if pri > 1<<20 {
			break
		}
	}
	m.severity, m.facility = pri&7, pri>>3
	m.hostname, m.app, m.procid = view(f.Hostname), view(f.AppName), view(f.ProcID)
	m.msgid, m.msg = view(f.MsgID), view(f.Msg)
	m.sd, m.sdNext = f.SD, 0
	if m.time {
		m.ts, _ = ParseTimestamp(f.Timestamp)
	}
	var pass bool
	if m.fast != nil {
		pass = m.fast(m)
	} else {
		out, err := m.vm.Run(m.prog, m.env)
		b, _ := out.(bool)
		pass = err == nil && b
		clear(m.sdCells[:])
	}
	// Drop the views: nothing may outlive the message.
	m.hostname, m.app, m.procid, m.msgid, m.msg = "", "", "", "", ""
	m.sd = nil
	return pass
}

// view returns b as a string without copying; valid while b is unchanged.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// eface is the layout of an empty interface.
type eface struct {
	typ, data unsafe.Pointer
}

// boxAt returns an interface holding a *T's value by reference: its data
// pointer is p, so a later write to *p is what the interface holds. Only
// used for the env values expr reads (never retained past a Run).
func boxAt[T any](p *T) any {
	var zero T
	v := any(zero)
	(*eface)(unsafe.Pointer(&v)).data = unsafe.Pointer(p)
	return v
}

// sdFunc implements sd(id, name): the value of parameter name in the SD
// element id of the current message, or "".
func (m *Matcher) sdFunc(params ...any) (any, error) {
	id, _ := params[0].(string)
	name, _ := params[1].(string)
	v, escaped, ok := LookupSD(m.sd, id, name)
	if !ok {
		return "", nil
	}
	if escaped {
		return unescapeSD(v), nil // allocates; rare
	}
	if m.sdNext >= len(m.sdCells) {
		return string(v), nil
	}
	c := &m.sdCells[m.sdNext]
	m.sdNext++
	*c = view(v)
	return boxAt(c), nil
}

// usage records what an expression reads; it also rewrites
// sd[id][name] into sd(id, name).
type usage struct{ time bool }

func (u *usage) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == "time" {
			u.time = true
		}
	case *ast.BuiltinNode:
		// date("<RFC 3339>") with a constant argument becomes a constant,
		// so comparing time with it allocates nothing per message.
		if n.Name != "date" || len(n.Arguments) != 1 {
			return
		}
		if s, ok := n.Arguments[0].(*ast.StringNode); ok {
			if t, err := time.Parse(time.RFC3339Nano, s.Value); err == nil {
				ast.Patch(node, &ast.ConstantNode{Value: t})
			}
		}
	case *ast.MemberNode:
		inner, ok := n.Node.(*ast.MemberNode)
		if !ok {
			return
		}
		if id, ok := inner.Node.(*ast.IdentifierNode); ok && id.Value == "sd" {
			call := &ast.CallNode{
				Callee:    &ast.IdentifierNode{Value: "sd"},
				Arguments: []ast.Node{inner.Property, n.Property},
			}
			ast.Patch(node, call)
		}
	}
}
