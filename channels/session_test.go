package channels

import (
	"strings"
	"testing"
)

func TestParseSessionRequest(t *testing.T) {
	for _, tc := range []struct {
		body string
		want SessionRequest
		err  string
	}{
		{body: `{"channel_id":"123"}`, want: SessionRequest{ChannelID: "123", Num: 100}},
		{body: `{"channel_id":123,"num":5}`, want: SessionRequest{ChannelID: "123", Num: 5}},
		{body: `{"channel_id":"app-1","num":"1500","tail":true,"ps":"web","source":"app"}`,
			want: SessionRequest{ChannelID: "app-1", Num: 1500, Tail: true, PS: "web", Source: "app"}},
		// "tail": false does not tail (Logplex tailed whenever the key was present).
		{body: `{"channel_id":"1","tail":false}`, want: SessionRequest{ChannelID: "1", Num: 100}},
		{body: `{"channel_id":"1","tail":null}`, want: SessionRequest{ChannelID: "1", Num: 100}},
		{body: `{"channel_id":"1","tail":"true"}`, want: SessionRequest{ChannelID: "1", Num: 100, Tail: true}},
		{body: `{"channel_id":"1","num":"-1"}`, want: SessionRequest{ChannelID: "1", Num: -1}},
		{body: `{"channel_id":"1","num":null}`, want: SessionRequest{ChannelID: "1", Num: 100}},
		{body: `{"channel_id":"1","num":"-2"}`, err: "'num' must be a decimal integer"},
		{body: `{"channel_id":"1","num":"ten"}`, err: "'num' must be a decimal integer"},
		{body: `{"channel_id":"1","num":[1]}`, err: "'num' must be a decimal integer"},
		{body: `{"num":"10"}`, err: "'channel_id' missing"},
		{body: `{"channel_id":""}`, err: "'channel_id' missing"},
		{body: `{"channel_id":["1"]}`, err: "'channel_id' missing"},
		{body: `[1]`, err: "invalid session JSON"},
		{body: `null`, err: "invalid session JSON"},
		{body: `{`, err: "invalid session JSON"},
	} {
		got, err := ParseSessionRequest([]byte(tc.body))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || ErrorCode(err) != CodeInvalid {
				t.Errorf("ParseSessionRequest(%s) = %+v, %v; want error %q", tc.body, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSessionRequest(%s) = %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
}

// FuzzParseSessionRequest: never panics; a request it accepts names a
// channel and a num of at least -1.
func FuzzParseSessionRequest(f *testing.F) {
	for _, s := range []string{`{"channel_id":"1","num":"10","tail":true}`, `{"channel_id":1e400}`, `{"channel_id":"x","num":"99999999999999999999"}`, `{}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseSessionRequest(body)
		if err != nil {
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("error code %d, want CodeInvalid", ErrorCode(err))
			}
			return
		}
		if r.ChannelID == "" || r.Num < -1 {
			t.Fatalf("accepted %+v", r)
		}
	})
}

func TestMatchPS(t *testing.T) {
	for _, tc := range []struct {
		filter, procid string
		want           bool
	}{
		{"", "anything", true}, {"web", "web", true}, {"web", "web.1", true}, {"web", "web.12", true},
		{"web", "webx", false}, {"web", "we", false}, {"web.1", "web.1", true}, {"web.1", "web.10", false},
	} {
		if got := MatchPS(tc.filter, tc.procid); got != tc.want {
			t.Errorf("MatchPS(%q, %q) = %v, want %v", tc.filter, tc.procid, got, tc.want)
		}
	}
}

func TestIDs(t *testing.T) {
	if tok := NewToken(); len(tok) != 38 || tok[:2] != "t." || !IsSessionID(tok[2:]) {
		t.Errorf("NewToken() = %q is not a token id", tok)
	}
	if id := NewSessionID(); !IsSessionID(id) {
		t.Errorf("NewSessionID() = %q is not a session id", id)
	}
	for _, s := range []string{"feff49f1-4d55-4c9e-aee1-2d2b10e69b42", "FEFF49F1-4D55-4C9E-AEE1-2D2B10E69B42"} {
		if !IsSessionID(s) {
			t.Errorf("IsSessionID(%q) = false", s)
		}
	}
	for _, s := range []string{"", "feff49f1-4d55-4c9e-aee1-2d2b10e69b4", "feff49f1x4d55-4c9e-aee1-2d2b10e69b42",
		"feff49f14d554c9eaee12d2b10e69b42", "{feff49f1-4d55-4c9e-aee1-2d2b10e69b42}", "urn:uuid:feff49f1-4d55-4c9e-aee1-2d2b10e69b42",
		"feff49f1-4d55-4c9e-aee1-2d2b10e69b4g"} {
		if IsSessionID(s) {
			t.Errorf("IsSessionID(%q) = true", s)
		}
	}
	if id, pass := NewCredID(), NewCredPass(); len(id) != 32 || len(pass) != 64 || id == pass[:32] ||
		strings.ToUpper(id) != id || strings.ToUpper(pass) != pass {
		t.Errorf("cred id %q pass %q", id, pass)
	}
	if a, b := RandomHex(3), RandomHex(3); len(a) != 6 || strings.Trim(a, "0123456789abcdef") != "" || a == b && a == RandomHex(3) {
		t.Errorf("RandomHex(3) = %q, %q", a, b)
	}
	if d := NewDrainToken(); len(d) != 38 || d[:2] != "d." {
		t.Errorf("NewDrainToken() = %q", d)
	}
	if r := Redact("t.feff49f1-4d55-4c9e-aee1-2d2b10e69b42"); r != "t.feff49f1…" {
		t.Errorf("Redact = %q", r)
	}
}
