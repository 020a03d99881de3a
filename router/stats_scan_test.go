package router

import "testing"

func TestSeverityAndProcID(t *testing.T) {
	for _, tc := range []struct {
		msg    string
		sev    int
		procid string
	}{
		{"<134>1 2024-01-01T00:00:00Z host app web.1 - - hello", 6, "web.1"},
		{"<11>1 2024-01-01T00:00:00Z host app  worker.2 - - x", 3, "worker.2"},
		{"<14>1 2024-01-01T00:00:00Z host app web.9", 6, "web.9"},
		{"<14>1 2024-01-01T00:00:00Z host app ", 6, ""},
		{"<14>1 2024-01-01T00:00:00Z host", 6, ""},
		{"<7>", 7, ""},
		{"", 0, ""},
	} {
		sev, procid := severityAndProcID([]byte(tc.msg))
		if sev != tc.sev || string(procid) != tc.procid {
			t.Errorf("severityAndProcID(%q) = %d, %q; want %d, %q", tc.msg, sev, procid, tc.sev, tc.procid)
		}
	}
}
