package channels

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DrainKind says how a drain delivers.
type DrainKind int

const (
	DrainHTTP      DrainKind = iota + 1 // http:// and https://: batched logplex-1 POSTs
	DrainSyslog                         // syslog://: octet-counted frames over TCP
	DrainSyslogTLS                      // syslog+tls://: octet-counted frames over TLS
)

// Default syslog drain ports, written into the stored URL as Logplex does.
const (
	DefaultSyslogPort    = 601
	DefaultSyslogTLSPort = 6514
)

// DrainURL is a validated drain destination.
type DrainURL struct {
	Raw      string    // normalized URL as stored and shown
	Kind     DrainKind //
	URL      *url.URL  // parsed; Fragment kept (see Insecure)
	Insecure bool      // "#insecure": skip certificate verification
}

// ParseDrainURL validates a drain destination the way Logplex's valid_uri
// does: http and https need a host; syslog and syslog+tls need a host and get
// their default port (601, 6514) written into the URL. The error is
// CodeInvalid and its message is the reason Logplex prints after
// "Invalid drain destination: ".
func ParseDrainURL(raw string) (DrainURL, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return DrainURL{}, Errorf(CodeInvalid, "invalid_uri")
	}
	d := DrainURL{URL: u, Insecure: u.Fragment == "insecure"}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "http", "https":
		if u.Hostname() == "" {
			return DrainURL{}, Errorf(CodeInvalid, "invalid_http_uri")
		}
		if p := u.Port(); p != "" && !validPort(p) {
			return DrainURL{}, Errorf(CodeInvalid, "invalid_http_uri")
		}
		d.Kind = DrainHTTP
	case "syslog", "syslog+tls":
		d.Kind, err = DrainSyslog, Errorf(CodeInvalid, "invalid_tcpsyslog_uri")
		def := DefaultSyslogPort
		if scheme == "syslog+tls" {
			d.Kind, err, def = DrainSyslogTLS, Errorf(CodeInvalid, "invalid_tlssyslog_uri"), DefaultSyslogTLSPort
		}
		if u.Hostname() == "" || u.Opaque != "" {
			return DrainURL{}, err
		}
		p := u.Port()
		if p == "" {
			u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(def))
		} else if !validPort(p) {
			return DrainURL{}, err
		}
	case "tcpsyslog", "syslog+tcp":
		return DrainURL{}, Errorf(CodeInvalid, "invalid_tcpsyslog_uri")
	case "":
		return DrainURL{}, Errorf(CodeInvalid, "missing_scheme")
	default:
		return DrainURL{}, Errorf(CodeInvalid, "{unknown_scheme,%q}", u.Scheme)
	}
	d.Raw = u.String()
	return d, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// LegacyDrainURL builds syslog://host:port from Logplex's legacy
// {"host","port"} drain form; a zero port means 514.
func LegacyDrainURL(host string, port int) string {
	if port == 0 {
		port = 514
	}
	return "syslog://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// NormalizeDrainURL returns the form of a drain URL used to detect
// duplicates: ParseDrainURL's normalized URL (default syslog ports filled
// in, scheme and host lowercased) when it validates, otherwise the URL as
// Go's parser re-serializes it, otherwise the trimmed string. Paths are not
// cleaned: "http://a" and "http://a/" are different drains, as in Logplex.
func NormalizeDrainURL(raw string) string {
	raw = strings.TrimSpace(raw)
	if d, err := ParseDrainURL(raw); err == nil {
		u := *d.URL
		u.Scheme = strings.ToLower(u.Scheme)
		u.Host = strings.ToLower(u.Host)
		return u.String()
	}
	if u, err := url.Parse(raw); err == nil {
		u.Scheme = strings.ToLower(u.Scheme)
		u.Host = strings.ToLower(u.Host)
		return u.String()
	}
	return raw
}
