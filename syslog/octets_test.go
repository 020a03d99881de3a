package syslog

import (
	"strings"
	"testing"
)

func TestSplitOctets(t *testing.T) {
	tests := []struct {
		name, body string
		max        int
		want       []string
		bad        bool
	}{
		{"one", "5 hello", 100, []string{"hello"}, false},
		{"two", "5 hello5 world", 100, []string{"hello", "world"}, false},
		{"newline in frame", "6 hello\n", 100, []string{"hello\n"}, false},
		{"logplex example", "118 <134>1 2012-12-10T03:00:48.123456Z erlang t.feff49f1-4d55-4c9e-aee1-2d2b10e69b42 console.1 - - Logsplat test message 1",
			10240, []string{"<134>1 2012-12-10T03:00:48.123456Z erlang t.feff49f1-4d55-4c9e-aee1-2d2b10e69b42 console.1 - - Logsplat test message 1"}, false},
		{"max", "10 " + strings.Repeat("x", 10), 10, []string{strings.Repeat("x", 10)}, false},
		{"empty", "", 100, nil, false},
		{"oversize", "11 " + strings.Repeat("x", 11), 10, nil, true},
		{"zero", "0 ", 100, nil, true},
		{"leading zero", "05 hello", 100, nil, true},
		{"truncated", "5 hello6 world", 100, nil, true},
		{"trailing newline", "5 hello\n", 100, nil, true},
		{"newline framed", "hello\n", 100, nil, true},
		{"no space", "5hello", 100, nil, true},
		{"digits only", "5", 100, nil, true},
		{"ten digits", "1000000000 x", 2000000000, nil, true},
		{"leading space", " 5 hello", 100, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			n, err := SplitOctets([]byte(tt.body), tt.max, func(m []byte) { got = append(got, string(m)) })
			if tt.bad {
				if err != ErrMalformed || n != 0 || got != nil {
					t.Errorf("SplitOctets(%q) = %d, %v, %q; want ErrMalformed and no calls", tt.body, n, err, got)
				}
				return
			}
			if err != nil || n != len(tt.want) || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("SplitOctets(%q) = %d, %v, %q; want %q", tt.body, n, err, got, tt.want)
			}
		})
	}
}

func TestSplitOctetsNoAllocs(t *testing.T) {
	body := octetStream(10)
	count := 0
	fn := func([]byte) { count++ }
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := SplitOctets(body, 10240, fn); err != nil || n != 10 {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("SplitOctets allocates %v times", allocs)
	}
}
