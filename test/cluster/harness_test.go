package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Addrs is what a node writes to its -addr-file.
type Addrs struct {
	API       string `json:"api"`
	Logs      string `json:"logs"`
	SyslogTCP string `json:"syslog_tcp"`
	SyslogUDP string `json:"syslog_udp"`
}

// Node is one plexus process of a cluster.
type Node struct {
	ID    string `json:"id"`
	PID   int    `json:"pid"`
	Addrs Addrs  `json:"addrs"`

	c       *Cluster
	killed  bool
	logFile string
}

// Cluster is what deploy/local-cluster.sh started in Dir.
type Cluster struct {
	t      testing.TB
	Dir    string
	Key    string  `json:"auth_key"`
	Config string  `json:"config_redis"` // unix:///dir/redis-config.sock
	Shards string  `json:"shards"`       // comma-separated unix:// URLs
	Nodes  []*Node `json:"nodes"`
	flags  string  // PLEXUS_NODE_FLAGS
}

// nodeFlags are given to every node: enough history that a busy machine
// cannot turn an ordering test into a retention test, short grace so
// that stopping is quick.
const nodeFlags = "-history 50000 -shutdown-grace 2s -drain-request-timeout 3s"

var (
	leftoversMu sync.Mutex
	leftovers   = map[string]bool{} // cluster dirs not stopped yet
)

// stopLeftovers stops clusters whose test did not get to its cleanup.
func stopLeftovers() {
	leftoversMu.Lock()
	defer leftoversMu.Unlock()
	for dir := range leftovers {
		_ = exec.Command("bash", filepath.Join(rootDir, "deploy", "local-cluster.sh"), "stop", dir).Run()
	}
}

// scriptEnv is the environment without PLEXUS_* / LOGPLEX_* settings of
// the developer, plus extra.
func scriptEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PLEXUS_") || strings.HasPrefix(kv, "LOGPLEX_") || strings.HasPrefix(kv, "BASE_PORT=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// startCluster runs `deploy/local-cluster.sh start DIR nodes shards` and
// waits until every node answers its healthcheck. The cluster is stopped
// (and on failure its logs are shown) when the test ends.
func startCluster(t testing.TB, nodes, shards int, extraFlags ...string) *Cluster {
	t.Helper()
	needTools(t)
	// unix socket paths must stay short: not t.TempDir().
	dir, err := os.MkdirTemp("", "plx")
	if err != nil {
		t.Fatal(err)
	}
	flags := strings.TrimSpace(nodeFlags + " " + strings.Join(extraFlags, " "))
	c := &Cluster{t: t, Dir: dir, flags: flags}
	leftoversMu.Lock()
	leftovers[dir] = true
	leftoversMu.Unlock()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			c.dumpLogs()
		}
		leftoversMu.Lock()
		delete(leftovers, dir)
		leftoversMu.Unlock()
		os.RemoveAll(dir)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", c.script(), "start", dir, strconv.Itoa(nodes), strconv.Itoa(shards))
	cmd.Env = scriptEnv("PLEXUS_BIN="+binPath, "PLEXUS_NODE_FLAGS="+flags)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("local-cluster.sh start: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		t.Fatalf("cluster.json: %v\n%s", err, out.String())
	}
	if err := json.Unmarshal(b, c); err != nil {
		t.Fatalf("cluster.json is not JSON (%v): %s", err, b)
	}
	if len(c.Nodes) != nodes {
		t.Fatalf("cluster.json lists %d nodes, want %d: %s", len(c.Nodes), nodes, b)
	}
	for i, n := range c.Nodes {
		n.c = c
		n.logFile = filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1))
		if n.PID <= 0 || n.Addrs.API == "" || n.Addrs.Logs == "" || n.Addrs.SyslogTCP == "" {
			t.Fatalf("node %d incomplete in cluster.json: %s", i+1, b)
		}
	}
	for _, n := range c.Nodes {
		n.waitHealthy(t, 20*time.Second)
	}
	return c
}

func (c *Cluster) script() string { return filepath.Join(rootDir, "deploy", "local-cluster.sh") }

// ShardURLs returns the shard URLs as the nodes got them.
func (c *Cluster) ShardURLs() []string { return strings.Split(c.Shards, ",") }

// stop ends the cluster: SIGTERM to every process of its pid files (nodes
// first, then Redis), SIGKILL after 10 s, then the stop script for
// anything left. The script alone takes seconds per process where PID 1
// reaps orphans late: `kill -0` succeeds on a zombie.
func (c *Cluster) stop() {
	for _, pattern := range []string{"node-*.pid", "redis-*.pid"} {
		files, _ := filepath.Glob(filepath.Join(c.Dir, pattern))
		var pids []int
		for _, f := range files {
			b, err := os.ReadFile(f)
			pid, err2 := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || err2 != nil || pid <= 0 {
				continue
			}
			if processAlive(pid) {
				_ = syscall.Kill(pid, syscall.SIGTERM)
				pids = append(pids, pid)
			}
			os.Remove(f)
		}
		start := time.Now()
		deadline := start.Add(10 * time.Second)
		for _, pid := range pids {
			for processAlive(pid) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if d := time.Since(start); d > 3*time.Second {
				c.t.Logf("stop: pid %d (%s) took %v to exit after SIGTERM", pid, pattern, d.Round(10*time.Millisecond))
			}
			if processAlive(pid) {
				c.t.Errorf("pid %d did not exit within 10 s of SIGTERM: killed", pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", c.script(), "stop", c.Dir)
	cmd.Env = scriptEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		// With no pid file left the script's last loop ends in a failed
		// test (exit status 1); the processes are gone already.
		c.t.Logf("local-cluster.sh stop: %v %s", err, out)
	}
}

// dumpLogs shows the tail of every node's log (failure reports).
func (c *Cluster) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(c.Dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		c.t.Logf("--- %s (last %d of %d bytes):\n%s", filepath.Base(f), min(len(b), 6000), len(b), tailOf(string(b), 6000))
	}
}

func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Node returns the node with the given id ("node-2").
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Kill9 ends the node with SIGKILL and waits until the process is gone.
// Its pid file is removed so that the stop script cannot signal a
// reused PID.
func (n *Node) Kill9(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (pid %d): %v", n.ID, n.PID, err)
	}
	n.killed = true
	waitFor(t, 10*time.Second, fmt.Sprintf("%s (pid %d) to exit", n.ID, n.PID), func() (bool, string) {
		return !processAlive(n.PID), "still running"
	})
	os.Remove(filepath.Join(n.c.Dir, n.ID+".pid"))
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// waitHealthy polls GET /healthcheck until it answers 200.
func (n *Node) waitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, n.ID+" healthcheck 200", func() (bool, string) {
		r, err := n.try("GET", "/healthcheck", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusOK, r.String()
	})
}

// ---- HTTP ----

var httpClient = &http.Client{Timeout: 10 * time.Second}

// Response is a fully read HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r Response) String() string { return fmt.Sprintf("%d %q", r.Status, tailOf(string(r.Body), 500)) }

// do sends one request; body is nil, []byte, string or JSON-encoded.
func do(method, url, auth string, body any, header ...string) (Response, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Response{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// try calls the node's API with the admin key.
func (n *Node) try(method, path string, body any) (Response, error) {
	return do(method, "http://"+n.Addrs.API+path, "Basic "+n.c.Key, body)
}

// API calls the node's API with the admin key and fails the test on a
// transport error.
func (n *Node) API(t testing.TB, method, path string, body any) Response {
	t.Helper()
	r, err := n.try(method, path, body)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", n.ID, method, path, err)
	}
	return r
}

func mustStatus(t testing.TB, what string, r Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, want, r)
	}
}

// ---- v3 config ----

// Channel is a channel with one token.
type Channel struct {
	ID, Token string
}

// createChannel does PUT /v3/channels/<name> {"tokens":["app"]} on n.
func (n *Node) createChannel(t testing.TB, name string) Channel {
	t.Helper()
	r := n.API(t, "PUT", "/v3/channels/"+name, map[string]any{"tokens": []string{"app"}})
	mustStatus(t, "PUT /v3/channels/"+name, r, http.StatusCreated)
	var doc struct {
		Channel string            `json:"channel"`
		Tokens  map[string]string `json:"tokens"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil || doc.Tokens["app"] == "" {
		t.Fatalf("PUT channel answer %s", r)
	}
	return Channel{ID: doc.Channel, Token: doc.Tokens["app"]}
}

// Drain is a drain as the v3 API shows it.
type Drain struct {
	ID     int64        `json:"id"`
	Token  string       `json:"token"`
	URL    string       `json:"url"`
	Status *DrainStatus `json:"status"`
}

// DrainStatus is the delivery status a node adds for drains it delivers.
type DrainStatus struct {
	Delivered uint64 `json:"delivered"`
	Node      string `json:"node"`
}

// createDrain does POST /v3/channels/<id>/drains {"url"} on n.
func (n *Node) createDrain(t testing.TB, channelID, url string) Drain {
	t.Helper()
	r := n.API(t, "POST", "/v3/channels/"+channelID+"/drains", map[string]any{"url": url})
	mustStatus(t, "POST /v3/channels/"+channelID+"/drains", r, http.StatusCreated)
	var d Drain
	if err := json.Unmarshal(r.Body, &d); err != nil || d.ID == 0 {
		t.Fatalf("POST drain answer %s", r)
	}
	return d
}

// drainOwners asks every live node for the drain and returns the
// distinct node ids they report as delivering it (status.node).
func (c *Cluster) drainOwners(channelID string, drainID int64) (owners []string, state string) {
	var states []string
	seen := map[string]bool{}
	for _, n := range c.Nodes {
		if n.killed {
			continue
		}
		r, err := n.try("GET", fmt.Sprintf("/v3/channels/%s/drains/%d", channelID, drainID), nil)
		if err != nil {
			states = append(states, n.ID+": "+err.Error())
			continue
		}
		states = append(states, n.ID+": "+r.String())
		var d Drain
		if r.Status == http.StatusOK && json.Unmarshal(r.Body, &d) == nil && d.Status != nil && d.Status.Node != "" && !seen[d.Status.Node] {
			seen[d.Status.Node] = true
			owners = append(owners, d.Status.Node)
		}
	}
	return owners, strings.Join(states, "; ")
}

// NodeInfo is one entry of GET /v3/nodes.
type NodeInfo struct {
	ID     string    `json:"id"`
	Addr   string    `json:"addr"`
	SeenAt time.Time `json:"seen_at"`
}

func (n *Node) nodes() ([]string, error) {
	r, err := n.try("GET", "/v3/nodes", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("GET /v3/nodes: %s", r)
	}
	var list []NodeInfo
	if err := json.Unmarshal(r.Body, &list); err != nil {
		return nil, fmt.Errorf("GET /v3/nodes: %v: %s", err, r)
	}
	ids := make([]string, len(list))
	for i, x := range list {
		ids[i] = x.ID
	}
	return ids, nil
}

// waitRegistry waits until GET /v3/nodes on the first node lists every
// live node of the cluster by its -node-id, and fails the test otherwise:
// the lease and failover tests rely on the node registry.
func (c *Cluster) waitRegistry(t testing.TB) {
	t.Helper()
	n := c.Nodes[0]
	waitFor(t, 10*time.Second, fmt.Sprintf("GET /v3/nodes on %s to list the node ids %q", n.ID, c.liveIDs()), func() (bool, string) {
		ids, err := n.nodes()
		return err == nil && containsAll(ids, c.liveIDs()), fmt.Sprintf("ids %q, err %v", ids, err)
	})
}

func (c *Cluster) liveIDs() []string {
	var ids []string
	for _, n := range c.Nodes {
		if !n.killed {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

func containsAny(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

func containsAll(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// waitSingleOwner waits until exactly one node reports delivering the
// drain and returns it. Owners named in not are waited out (a dead
// node's lease). Several nodes reporting the drain at the deadline (two
// nodes delivering it) or none fails the test.
func (c *Cluster) waitSingleOwner(t testing.TB, channelID string, drainID int64, timeout time.Duration, not ...string) string {
	t.Helper()
	var owners []string
	var state string
	deadline := time.Now().Add(timeout)
	for {
		owners, state = c.drainOwners(channelID, drainID)
		if len(owners) == 1 && !containsAny(not, owners) {
			return owners[0]
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	switch {
	case len(owners) > 1:
		t.Fatalf("drain %d is delivered by %d nodes at once (%q) after %v: the drain lease does not hold; %s", drainID, len(owners), owners, timeout, state)
	case len(owners) == 0:
		t.Fatalf("drain %d: no node reports delivering it (status.node) within %v: %s", drainID, timeout, state)
	}
	t.Fatalf("drain %d: still owned by %q after %v, want another node: %s", drainID, owners, timeout, state)
	return ""
}

// ---- polling ----

// waitFor polls cond every 20 ms until it holds or timeout passes; cond
// describes the current state for the failure message.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startNode starts one more node by hand with the flags the script gives
// its nodes, but with the config Redis at configURL (e.g. through a
// proxy). It writes DIR/<id>.pid so that the cluster's stop ends it too.
func (c *Cluster) startNode(t testing.TB, id, configURL string) *Node {
	t.Helper()
	addrFile := filepath.Join(c.Dir, id+".addrs")
	logFile := filepath.Join(c.Dir, id+".log")
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	args := []string{
		"-node-id", id, "-data-dir", filepath.Join(c.Dir, id),
		"-redis-url", configURL, "-shard-urls", c.Shards,
		"-api-addr", "127.0.0.1:0", "-logs-addr", "127.0.0.1:0",
		"-syslog-addr", "127.0.0.1:0", "-syslog-udp-addr", "127.0.0.1:0",
		"-addr-file", addrFile, "-log-format", "json",
	}
	args = append(args, strings.Fields(c.flags)...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = scriptEnv("PLEXUS_AUTH_KEY=" + c.Key)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reaps it
	n := &Node{ID: id, PID: cmd.Process.Pid, c: c, logFile: logFile}
	if err := os.WriteFile(filepath.Join(c.Dir, id+".pid"), []byte(strconv.Itoa(n.PID)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 && json.Unmarshal(b, &n.Addrs) == nil && n.Addrs.API != "" {
			break
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before listening; see %s", id, logFile)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not write %s within 20 s", id, addrFile)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Nodes = append(c.Nodes, n)
	n.waitHealthy(t, 20*time.Second)
	return n
}
