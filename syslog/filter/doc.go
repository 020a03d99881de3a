// Package filter selects syslog messages with an expression
// (github.com/expr-lang/expr) over their parsed RFC 5424 fields:
//
//	severity, facility   numbers (RFC 5424: PRI = facility*8 + severity)
//	hostname, app,       strings: HOSTNAME, APP-NAME (the token's name once
//	procid, msgid, msg   cooked), PROCID, MSGID, the text
//	time                 the TIMESTAMP as a time.Time (zero if unparseable)
//	sd(id, name)         a structured-data parameter ("" if absent); also
//	                     written sd["origin@123"]["ip"]
//
// Examples: `severity <= 4`, `app == "web" && procid startsWith "web."`,
// `msg contains "timeout"`, `msg matches "^GET /api"`,
// `sd("origin@123", "ip") == "1.2.3.4"`.
//
// A Matcher is compiled once per drain or session (Compile) and evaluates
// one message at a time. It is not safe for concurrent use.
//
// # The fast path
//
// Compile lowers the common expressions to plain Go closures (fast.go): a
// field compared with a constant (==, !=, <, <=, >, >=, contains,
// startsWith, endsWith, matches with a constant pattern, in / not in a
// constant list, time against date("...")), combined with &&, ||, !, and
// the words and/or/not. Those run without expr's VM, 3-6 times faster
// (BenchmarkMatchFields: about 40 ns against 225 ns for
// `severity <= 6 && app != "nope"`). Anything else (sd(), one field against
// another, arithmetic, builtins) runs on the VM. Both compute the same
// answer: TestFastPathAgrees and FuzzFastPath compare them.
//
// # Allocation
//
// Match parses the message with [syslog.Parse] (no allocation) and does not
// copy any field: the string fields are unsafe views of the message bytes,
// valid only while Match runs (the expression never keeps them: its result
// is a bool). The values expr's VM reads are interfaces built once per
// Matcher whose data pointers refer to the Matcher's own cells, which Match
// overwrites for each message; so reading a field boxes nothing. With that,
// comparisons, `contains`, `startsWith`, `endsWith`, `matches` with a
// constant pattern, `in` with a constant list, and `&&`/`||`/`!` allocate
// nothing per message (TestMatchAllocs holds it). What still allocates, in
// expr's VM: a call to sd() (one argument buffer per evaluation; values
// with backslash escapes are also copied), `matches` with a pattern that is
// not a constant (compiled per message), now() and date() (time values
// boxed per call), and list/map literals that are not constant.
package filter
