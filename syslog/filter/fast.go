package filter

import (
	"cmp"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
)

// pred is an expression lowered to Go closures: the fast path for the
// common filters (a field compared with a constant, combined with
// &&, || and !). It reads the Matcher's cells, set by MatchFields.
type pred func(m *Matcher) bool

// lower turns the checked, optimised tree of a compiled program into a
// pred, or reports false when the tree uses anything else (sd(), field
// against field, arithmetic, a non-constant pattern, ...): such programs
// run on expr's VM. Every case below computes exactly what expr's VM
// computes for it (vm.go, runtime.Equal/Less/...); TestFastPathAgrees and
// FuzzFastPath compare the two.
func lower(n ast.Node) (pred, bool) {
	switch n := n.(type) {
	case *ast.BoolNode:
		v := n.Value
		return func(*Matcher) bool { return v }, true
	case *ast.ConstantNode:
		v, ok := n.Value.(bool)
		return func(*Matcher) bool { return v }, ok
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil, false
		}
		p, ok := lower(n.Node)
		if !ok {
			return nil, false
		}
		return func(m *Matcher) bool { return !p(m) }, true
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and", "||", "or":
			l, ok := lower(n.Left)
			if !ok {
				return nil, false
			}
			r, ok := lower(n.Right)
			if !ok {
				return nil, false
			}
			if n.Operator == "&&" || n.Operator == "and" {
				return func(m *Matcher) bool { return l(m) && r(m) }, true
			}
			return func(m *Matcher) bool { return l(m) || r(m) }, true
		}
		return lowerCompare(n)
	}
	return nil, false
}

// lowerCompare lowers `field op constant` (and `constant op field` for the
// symmetric comparisons).
func lowerCompare(n *ast.BinaryNode) (pred, bool) {
	op, left, right := n.Operator, n.Left, n.Right
	if _, ok := left.(*ast.IdentifierNode); !ok {
		flip, ok := flipped[op]
		if !ok {
			return nil, false
		}
		op, left, right = flip, right, left
	}
	id, ok := left.(*ast.IdentifierNode)
	if !ok {
		return nil, false
	}
	if f, ok := intFields[id.Value]; ok {
		return lowerInt(op, f, right)
	}
	if f, ok := stringFields[id.Value]; ok {
		return lowerString(op, f, right)
	}
	if id.Value == "time" {
		return lowerTime(op, right)
	}
	return nil, false
}

// flipped is the operator that keeps a comparison's meaning when its
// operands are swapped (only operators that have one).
var flipped = map[string]string{
	"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<=",
}

var intFields = map[string]func(*Matcher) int{
	"severity": func(m *Matcher) int { return m.severity },
	"facility": func(m *Matcher) int { return m.facility },
}

var stringFields = map[string]func(*Matcher) string{
	"hostname": func(m *Matcher) string { return m.hostname },
	"app":      func(m *Matcher) string { return m.app },
	"procid":   func(m *Matcher) string { return m.procid },
	"msgid":    func(m *Matcher) string { return m.msgid },
	"msg":      func(m *Matcher) string { return m.msg },
}

func lowerInt(op string, f func(*Matcher) int, c ast.Node) (pred, bool) {
	if op == "in" || op == "not in" {
		return lowerIn[int](op, f, c)
	}
	k, ok := c.(*ast.IntegerNode)
	if !ok {
		return nil, false
	}
	return lowerOrdered(op, f, k.Value)
}

func lowerString(op string, f func(*Matcher) string, c ast.Node) (pred, bool) {
	if op == "in" || op == "not in" {
		return lowerIn[string](op, f, c)
	}
	k, ok := c.(*ast.StringNode)
	if !ok {
		return nil, false
	}
	v := k.Value
	switch op {
	case "contains":
		return func(m *Matcher) bool { return strings.Contains(f(m), v) }, true
	case "startsWith":
		return func(m *Matcher) bool { return strings.HasPrefix(f(m), v) }, true
	case "endsWith":
		return func(m *Matcher) bool { return strings.HasSuffix(f(m), v) }, true
	case "matches":
		re, err := regexp.Compile(v)
		if err != nil {
			return nil, false
		}
		return func(m *Matcher) bool { return re.MatchString(f(m)) }, true
	}
	return lowerOrdered(op, f, v)
}

// lowerOrdered lowers the comparison operators for a number or a string.
func lowerOrdered[T cmp.Ordered](op string, f func(*Matcher) T, v T) (pred, bool) {
	switch op {
	case "==":
		return func(m *Matcher) bool { return f(m) == v }, true
	case "!=":
		return func(m *Matcher) bool { return f(m) != v }, true
	case "<":
		return func(m *Matcher) bool { return f(m) < v }, true
	case "<=":
		return func(m *Matcher) bool { return f(m) <= v }, true
	case ">":
		return func(m *Matcher) bool { return f(m) > v }, true
	case ">=":
		return func(m *Matcher) bool { return f(m) >= v }, true
	}
	return nil, false
}

// lowerIn lowers `in` and `not in` a constant list, which expr's optimizer
// has turned into a set (map[T]struct{}).
func lowerIn[T comparable](op string, f func(*Matcher) T, c ast.Node) (pred, bool) {
	set, ok := constant(c).(map[T]struct{})
	if !ok {
		return nil, false
	}
	in := func(m *Matcher) bool { _, ok := set[f(m)]; return ok }
	if op == "not in" {
		return func(m *Matcher) bool { return !in(m) }, true
	}
	return in, true
}

func lowerTime(op string, c ast.Node) (pred, bool) {
	v, ok := constant(c).(time.Time)
	if !ok {
		return nil, false
	}
	switch op {
	case "==":
		return func(m *Matcher) bool { return m.ts.Equal(v) }, true
	case "!=":
		return func(m *Matcher) bool { return !m.ts.Equal(v) }, true
	case "<":
		return func(m *Matcher) bool { return m.ts.Before(v) }, true
	case "<=":
		return func(m *Matcher) bool { return !m.ts.After(v) }, true
	case ">":
		return func(m *Matcher) bool { return m.ts.After(v) }, true
	case ">=":
		return func(m *Matcher) bool { return !m.ts.Before(v) }, true
	}
	return nil, false
}

func constant(n ast.Node) any {
	if c, ok := n.(*ast.ConstantNode); ok {
		return c.Value
	}
	return nil
}
