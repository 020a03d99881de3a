package channels

// Output formats of sessions and drains.
const (
	// FormatLogplex (the default, also "") is Logplex's: session lines
	// "TIME APP[PROCID]: MSG", drain frames with "host" as HOSTNAME and no
	// structured data.
	FormatLogplex = "logplex"
	// FormatRFC5424 delivers each message as stored: the RFC 5424 message as
	// received, with its HOSTNAME and structured data, only the token
	// replaced by its name.
	FormatRFC5424 = "rfc5424"
)

// CheckFormat validates an output format and returns its canonical form
// ("" for Logplex's).
func CheckFormat(f string) (string, error) {
	switch f {
	case "", FormatLogplex:
		return "", nil
	case FormatRFC5424:
		return f, nil
	}
	return "", Errorf(CodeInvalid, "unknown format %q (want %q or %q)", f, FormatLogplex, FormatRFC5424)
}
