package channels

import (
	"net/url"
	"testing"
)

func TestParseDrainURL(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		want     string // normalized; "" = refused
		kind     DrainKind
		insecure bool
		reason   string
	}{
		{raw: "https://logs.example.com/drain?x=1", want: "https://logs.example.com/drain?x=1", kind: DrainHTTP},
		{raw: "http://u:p@127.0.0.1:9000/in#frag", want: "http://u:p@127.0.0.1:9000/in#frag", kind: DrainHTTP},
		{raw: "syslog://127.0.0.1", want: "syslog://127.0.0.1:601", kind: DrainSyslog},
		{raw: "syslog://h:514", want: "syslog://h:514", kind: DrainSyslog},
		{raw: "syslog+tls://h", want: "syslog+tls://h:6514", kind: DrainSyslogTLS},
		{raw: "syslog+tls://h:7000#insecure", want: "syslog+tls://h:7000#insecure", kind: DrainSyslogTLS, insecure: true},
		{raw: "syslog://[::1]", want: "syslog://[::1]:601", kind: DrainSyslog},
		{raw: "  https://trimmed.example  ", want: "https://trimmed.example", kind: DrainHTTP},
		{raw: "ftp://x", reason: `{unknown_scheme,"ftp"}`},
		{raw: "syslog+tcp://x:1", reason: "invalid_tcpsyslog_uri"},
		{raw: "tcpsyslog://x:1", reason: "invalid_tcpsyslog_uri"},
		{raw: "syslog://h:0", reason: "invalid_tcpsyslog_uri"},
		{raw: "syslog://h:70000", reason: "invalid_tcpsyslog_uri"},
		{raw: "syslog+tls://:6514", reason: "invalid_tlssyslog_uri"},
		{raw: "http://", reason: "invalid_http_uri"},
		{raw: "https://h:99999/", reason: "invalid_http_uri"},
		{raw: "i am not a url", reason: "missing_scheme"},
		{raw: "", reason: "invalid_uri"},
		{raw: "http://[bad", reason: "invalid_uri"},
	} {
		d, err := ParseDrainURL(tc.raw)
		if tc.want == "" {
			if err == nil || ErrorCode(err) != CodeInvalid || err.Error() != tc.reason {
				t.Errorf("ParseDrainURL(%q) = %q, %v; want CodeInvalid %q", tc.raw, d.Raw, err, tc.reason)
			}
			continue
		}
		if err != nil || d.Raw != tc.want || d.Kind != tc.kind || d.Insecure != tc.insecure {
			t.Errorf("ParseDrainURL(%q) = %q kind %d insecure %v, %v; want %q kind %d insecure %v",
				tc.raw, d.Raw, d.Kind, d.Insecure, err, tc.want, tc.kind, tc.insecure)
		}
	}
}

// FuzzParseDrainURL: never panics; what it accepts is a URL with a host
// whose normalized form is accepted again unchanged (idempotent).
func FuzzParseDrainURL(f *testing.F) {
	for _, s := range []string{"https://a.example/x?y#z", "syslog://h", "syslog+tls://h:1#insecure", "ftp://x", "http://[::1]:80/", "syslog://%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := ParseDrainURL(raw)
		if err != nil {
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("ParseDrainURL(%q): error code %d, want CodeInvalid", raw, ErrorCode(err))
			}
			return
		}
		if d.URL == nil || d.URL.Hostname() == "" || d.Kind == 0 {
			t.Fatalf("ParseDrainURL(%q) accepted %+v", raw, d)
		}
		again, err := ParseDrainURL(d.Raw)
		if err != nil || again.Raw != d.Raw || again.Kind != d.Kind {
			t.Fatalf("ParseDrainURL(%q) = %q, but that parses as %q, %v", raw, d.Raw, again.Raw, err)
		}
		if _, err := url.Parse(d.Raw); err != nil {
			t.Fatalf("normalized %q does not parse: %v", d.Raw, err)
		}
	})
}

func TestLegacyDrainURL(t *testing.T) {
	if got := LegacyDrainURL("h", 0); got != "syslog://h:514" {
		t.Errorf("LegacyDrainURL(h, 0) = %q", got)
	}
	if got := LegacyDrainURL("::1", 601); got != "syslog://[::1]:601" {
		t.Errorf("LegacyDrainURL(::1, 601) = %q", got)
	}
}
