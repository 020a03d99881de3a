package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFiltersFormatsStats drives filters, the rfc5424 format and the
// per-source counts with real clients: syslog over TCP in, a filtered HTTP
// drain out, sessions and the stats endpoint over HTTP.
func TestFiltersFormatsStats(t *testing.T) {
	recv := startDrainReceiver(t, "127.0.0.1:0")
	s := start(t)
	ch := s.createChannel(t, "filters", "app")
	tok := ch.Tokens["app"]

	r := s.API(t, "POST", "/v3/channels/"+ch.ID+"/drains", map[string]any{"url": "http://" + recv.Addr() + "/", "filter": "severity <= 4"})
	mustStatus(t, "POST v3 drain with a filter", r, http.StatusCreated)
	var d struct {
		ID     int64
		Filter string
	}
	r.JSON(t, &d)
	if d.Filter != "severity <= 4" {
		t.Fatalf("drain answer %s", r)
	}
	r = s.API(t, "POST", "/v3/channels/"+ch.ID+"/drains", map[string]any{"url": "http://" + recv.Addr() + "/x", "filter": "severity <="})
	mustStatus(t, "POST v3 drain with an invalid filter", r, http.StatusUnprocessableEntity)

	// 20 messages over TCP: even ones are errors (severity 3), odd ones info (6).
	conn := dialTCP(t, s.Addrs.SyslogTCP)
	var wantDrained []string
	for i := range 20 {
		pri := 14 // user.info
		if i%2 == 0 {
			pri = 11 // user.err
			wantDrained = append(wantDrained, fmt.Sprintf("<11>1 2024-05-01T10:00:00.%06dZ host app web.%d - n %d", i, i%3, i))
		}
		write(t, conn, frame(fmt.Sprintf(`<%d>1 2024-05-01T10:00:00.%06dZ myhost %s web.%d - [origin@123 ip="1.2.3.4"] n %d`, pri, i, tok, i%3, i)))
	}
	s.waitHistory(t, ch.ID, 20, 15*time.Second)
	recv.waitFrames(t, len(wantDrained), 15*time.Second)
	waitFor(t, 15*time.Second, "10 filtered messages counted", func() (bool, string) {
		v := s.metric(t, "plexus_drain_filtered_total", fmt.Sprintf(`drain_id="%d"`, d.ID))
		return v == 10, fmt.Sprintf("plexus_drain_filtered_total %v", v)
	})
	got := recv.frames()
	if strings.Join(got, "\n") != strings.Join(wantDrained, "\n") {
		t.Errorf("filtered drain got\n %q\nwant %q", got, wantDrained)
	}
	if v := s.metric(t, "plexus_drain_dropped_total", fmt.Sprintf(`drain_id="%d"`, d.ID)); v != 0 {
		t.Errorf("filtered messages counted as dropped: %v", v)
	}

	// A session in the rfc5424 format shows HOSTNAME and SD, not the token.
	r = s.API(t, "POST", "/v3/sessions", map[string]any{"channel_id": ch.ID, "num": "2", "format": "rfc5424"})
	mustStatus(t, "POST v3 session", r, http.StatusCreated)
	var sess struct{ URL string }
	r.JSON(t, &sess)
	body := do(t, "GET", s.sessionURL(t, sess.URL), "", nil)
	want := `<14>1 2024-05-01T10:00:00.000019Z myhost app web.1 - [origin@123 ip="1.2.3.4"] n 19` + "\n"
	if lines := splitLines(string(body.Body)); len(lines) != 2 || lines[1]+"\n" != want || strings.Contains(string(body.Body), tok) {
		t.Errorf("rfc5424 session = %q, want its last line %q", body.Body, want)
	}
	// The default format is Logplex's, unchanged; a filter combines with ps.
	u := s.newSession(t, map[string]any{"channel_id": ch.ID, "num": "100", "ps": "web.1", "filter": `msg endsWith "9" || sd("origin@123", "ip") == "nope"`})
	if got := string(do(t, "GET", u, "", nil).Body); got != "2024-05-01T10:00:00.000019Z app[web.1]: n 19\n" {
		t.Errorf("ps + filter session = %q", got)
	}
	r = s.API(t, "POST", "/v2/sessions", map[string]any{"channel_id": ch.ID, "filter": "app =="})
	mustStatus(t, "legacy session with an invalid filter", r, http.StatusUnprocessableEntity)

	// A filtered page of the v3 logs endpoint.
	lr := do(t, "GET", "http://"+s.Addrs.API+"/v3/channels/"+ch.ID+"/logs?num=1&filter="+strings.ReplaceAll(`procid=="web.2"`, `"`, "%22"), adminAuth(s), nil)
	mustStatus(t, "filtered logs", lr, http.StatusOK)
	if want := "<14>1 2024-05-01T10:00:00.000017Z host app web.2 - n 17\n"; !strings.HasSuffix(string(lr.Body), " "+want) {
		t.Errorf("filtered logs = %q, want %q", lr.Body, want)
	}

	// The counts add up.
	r = s.API(t, "GET", "/v3/channels/"+ch.ID+"/stats", nil)
	mustStatus(t, "GET stats", r, http.StatusOK)
	type counts struct {
		Received uint64
		Dropped  map[string]uint64
	}
	type snap struct {
		Total      counts
		LastMinute counts `json:"last_minute"`
	}
	var st struct {
		snap
		Sources      map[string]snap
		ProcessTypes map[string]snap `json:"process_types"`
		Severities   map[string]snap
	}
	r.JSON(t, &st)
	if st.Total.Received != 20 || st.LastMinute.Received != 20 || st.Total.Dropped["filter"] != 10 {
		t.Errorf("stats total = %+v, last minute %+v", st.Total, st.LastMinute)
	}
	if st.Sources["app"].Total.Received != 20 || st.Severities["3"].Total.Received != 10 || st.Severities["6"].Total.Received != 10 ||
		st.Severities["6"].Total.Dropped["filter"] != 10 {
		t.Errorf("stats = %s", r.Body)
	}
	var sum uint64
	for _, p := range st.ProcessTypes {
		sum += p.Total.Received
	}
	if sum != 20 || st.ProcessTypes["web"].Total.Received != 20 {
		t.Errorf("process types add up to %d: %s", sum, r.Body)
	}
}
