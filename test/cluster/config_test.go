package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-router/plexus/test/plexustest"
)

// propagation is how soon a change made through one node must be usable
// on every other (issue 4 §1).
const propagation = time.Second

// TestConfigPropagates: a channel, token and drain created through node 1
// are usable at node 3 within a second: node 3 routes TCP syslog for the
// token and lists the drain.
func TestConfigPropagates(t *testing.T) {
	recv := startReceiver(t)
	c := startCluster(t, 3, 2)
	n1, n3 := c.Nodes[0], c.Nodes[2]

	// Node 3's syslog connection is open before the token exists; probes
	// go out every 20 ms from the moment the channel is created, and the
	// first one stored tells when node 3 started routing the token.
	conn, err := net.DialTimeout("tcp", n3.Addrs.SyslogTCP, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	ch := n1.createChannel(t, "propagation")
	created := time.Now()
	var (
		mu     sync.Mutex
		sentAt []time.Time // probe k+1 was written at sentAt[k]
	)
	stop := make(chan struct{})
	probesDone := make(chan error, 1)
	go func() {
		for k := 1; ; k++ {
			select {
			case <-stop:
				probesDone <- nil
				return
			default:
			}
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write([]byte(message(ch.Token, "probe", k) + "\n")); err != nil {
				probesDone <- err
				return
			}
			mu.Lock()
			sentAt = append(sentAt, time.Now())
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	d := n1.createDrain(t, ch.ID, recv.URL("/d1"))
	drainCreated := time.Now()
	var listed time.Time
	waitFor(t, 5*time.Second, "node 3 to list the drain", func() (bool, string) {
		r, err := n3.try("GET", "/v3/channels/"+ch.ID, nil)
		if err != nil {
			return false, err.Error()
		}
		var doc struct {
			Tokens map[string]string `json:"tokens"`
			Drains []Drain           `json:"drains"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &doc) != nil {
			return false, r.String()
		}
		for _, x := range doc.Drains {
			if x.ID == d.ID && x.URL == d.URL && x.Token == d.Token {
				listed = time.Now()
				return doc.Tokens["app"] == ch.Token, r.String()
			}
		}
		return false, r.String()
	})
	if lag := listed.Sub(drainCreated); lag > propagation {
		t.Errorf("node 3 listed the drain %v after node 1 created it, want within %v", lag, propagation)
	}

	// Probes stored in the channel log (read through node 1).
	var stored map[int]bool
	readStored := func() string {
		r, err := n1.try("GET", "/v3/channels/"+ch.ID+"/logs?num=1000", nil)
		if err != nil {
			return err.Error()
		}
		frames, err := splitLogsBody(r.Body)
		if err != nil || r.Status != http.StatusOK {
			return fmt.Sprintf("%v: %s", err, r)
		}
		stored = map[int]bool{}
		for _, f := range frames {
			if s, k, ok := parseMsg(f); ok && s == "probe" {
				stored[k] = true
			}
		}
		return fmt.Sprintf("%d probes stored", len(stored))
	}
	// Keep probing until node 3 routes the token (the first probe stored
	// tells when), then read what node 3 stored.
	waitFor(t, 10*propagation, "node 3 to store a probe", func() (bool, string) {
		state := readStored()
		return len(stored) > 0, state
	})
	close(stop)
	if err := <-probesDone; err != nil {
		t.Fatalf("probes to node 3: %v", err)
	}
	mu.Lock()
	nprobes := len(sentAt)
	mu.Unlock()
	waitFor(t, 5*time.Second, fmt.Sprintf("probe %d (the last) in the channel log", nprobes), func() (bool, string) {
		state := readStored()
		return stored[nprobes], fmt.Sprintf("%s of %d sent", state, nprobes)
	})
	firstStored := 0
	for k := 1; k <= nprobes; k++ {
		if stored[k] {
			firstStored = k
			break
		}
	}
	mu.Lock()
	routedAt := sentAt[firstStored-1]
	mu.Unlock()
	lag := routedAt.Sub(created)
	t.Logf("node 3 routed the new token %v after node 1 created it (probe %d of %d); listed the drain after %v",
		lag.Round(time.Millisecond), firstStored, nprobes, listed.Sub(drainCreated).Round(time.Millisecond))
	if lag > propagation {
		t.Errorf("node 3 routed the token first %v after node 1 created it, want within %v", lag, propagation)
	}
	var missing []int
	for k := firstStored; k <= nprobes; k++ {
		if !stored[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("probes %v sent to node 3 after it routed the token were not stored", missing)
	}
}

// splitLogsBody splits a GET /v3/channels/<id>/logs body ("LEN MSG\n" frames).
func splitLogsBody(b []byte) ([]string, error) {
	frames, err := plexustest.SplitFrames(b)
	for i := range frames {
		frames[i] = strings.TrimSuffix(frames[i], "\n")
	}
	return frames, err
}
