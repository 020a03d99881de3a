package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/plexus-router/plexus/test/plexustest"
)

var uiScreenshot = flag.String("ui-screenshot", "", "TestWebUI writes a screenshot of the page to this file (docs/ui.png)")

// freeAddr returns a 127.0.0.1 address no one listens on now: the web UI
// test restarts the server on the same API port (the page's origin).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	t       *testing.T
	ctx     context.Context
	dialogs atomic.Int32 // JavaScript dialogs opened (alert, confirm, prompt)
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	exe := plexustest.NeedProgram(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 960),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
	})
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What the page showed, for the failure report.
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		text, err := chromedp.Run(c, chromedp.Evaluate[string]("document.body.innerText.slice(-3000)"))
		t.Logf("page text (%v):\n%s", err, text)
	})
	start := time.Now()
	// The first action starts the browser, which lives as long as the
	// context of that call: no timeout on it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	// Count JavaScript dialogs (an alert from logged HTML) and close them,
	// so the page goes on.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			b.dialogs.Add(1)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

// run runs actions with a deadline, failing the test on error.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and returns its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) text(sel string) string {
	return eval[string](b, fmt.Sprintf("(document.querySelector(%s) || {textContent: ''}).textContent", jsString(sel)))
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// logHas reports whether a line on the page contains s.
func (b *browser) logHas(s string) bool {
	return eval[bool](b, fmt.Sprintf("[...document.querySelectorAll('#log .line')].some(e => e.textContent.includes(%s))", jsString(s)))
}

// waitLog waits until a line on the page contains s and returns how long
// that took.
func (b *browser) waitLog(s string, timeout time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	waitFor(b.t, timeout, "the page to show "+s, func() (bool, string) {
		return b.logHas(s), "status " + b.text("#status") + ", last line " + b.lastLine()
	})
	return time.Since(start)
}

func (b *browser) lastLine() string {
	return b.text("#log .line:last-child")
}

// offsets returns the offsets of the message lines shown, in page order.
func (b *browser) offsets() []int {
	return eval[[]int](b, "[...document.querySelectorAll('#log .line[data-offset]')].map(e => +e.dataset.offset)")
}

func (b *browser) waitStatus(state string, timeout time.Duration) {
	b.t.Helper()
	waitFor(b.t, timeout, "status "+state, func() (bool, string) {
		s := eval[string](b, "document.getElementById('status').dataset.state")
		return s == state, s
	})
}

// syslogLine is one RFC 5424 message for the channel's token over TCP
// (newline framed).
func syslogLine(tok, proc, msg string) string {
	return fmt.Sprintf("<134>1 %s host %s %s - - %s\n", time.Now().UTC().Format(time.RFC3339Nano), tok, proc, msg)
}

// TestWebUI drives the page at /ui/ in headless Chromium: sign in with a
// credential, open a channel (its history), see a message sent over TCP
// within a second, see logged HTML as text, filter, load older history,
// see a failing drain's error, pause, and survive a server restart without
// a gap or a duplicate.
func TestWebUI(t *testing.T) {
	began := time.Now()
	phase := func(name string) { t.Logf("%6.2fs %s", time.Since(began).Seconds(), name) }
	apiAddr := freeAddr(t)
	// The drain below never delivers: a short grace keeps the restart quick.
	s := start(t, "-api-addr", apiAddr, "-shutdown-grace", "500ms")
	base := "http://" + s.Addrs.API
	if s.Addrs.API != apiAddr {
		t.Fatalf("API listens on %s, want %s", s.Addrs.API, apiAddr)
	}

	// A channel, a credential, a drain whose destination refuses
	// connections, and 150 messages of history before the page opens.
	r := s.API(t, "PUT", "/v3/channels/shop", map[string]any{"tokens": []string{"app"}})
	mustStatus(t, "PUT /v3/channels/shop", r, http.StatusCreated)
	var doc struct{ Tokens map[string]string }
	r.JSON(t, &doc)
	tok := doc.Tokens["app"]
	deadDrain := "http://user:secret@" + freeAddr(t) + "/logs"
	r = s.API(t, "POST", "/v3/channels/shop/drains", map[string]any{"url": deadDrain})
	mustStatus(t, "POST /v3/channels/shop/drains", r, http.StatusCreated)
	c := s.createCred(t, "web ui", true, false)

	conn := dialTCP(t, s.Addrs.SyslogTCP)
	var old strings.Builder
	procs := []string{"web.1", "web.2", "worker.1", "router"}
	for i := range 150 {
		fmt.Fprint(&old, syslogLine(tok, procs[i%len(procs)], fmt.Sprintf("at=info method=GET path=/items/%d status=200 service=%dms", i, 3+i%17)))
	}
	write(t, conn, old.String())
	s.waitHistory(t, "shop", 150, 10*time.Second)

	phase("browser")
	b := startBrowser(t)
	b.run("open /ui/", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#signin-form")))

	// A wrong password is refused on the page.
	b.run("wrong password",
		chromedp.SendKeys(chromedp.CSS("#cred-id"), c.ID), chromedp.SendKeys(chromedp.CSS("#cred-pass"), "wrong"),
		chromedp.Click(chromedp.CSS("#signin-button")))
	waitFor(t, 5*time.Second, "a sign-in error", func() (bool, string) {
		s := b.text("#signin-error")
		return s != "", s
	})
	eval[bool](b, "document.getElementById('cred-pass').value = '', true")
	b.run("sign in",
		chromedp.SendKeys(chromedp.CSS("#cred-pass"), c.Pass),
		chromedp.Click(chromedp.CSS("#signin-button")), chromedp.WaitVisible(chromedp.CSS("#channel-form")))
	stored := eval[string](b, "sessionStorage.getItem('plexus.auth') || ''")
	if stored != credAuth(c.ID, c.Pass) {
		t.Errorf("sessionStorage plexus.auth = %q, want the Basic credential", stored)
	}

	phase("open channel")
	// Where the server lists channels (GET /v3/channels), the page offers
	// them.
	if r := s.API(t, "GET", "/v3/channels", nil); r.Status == http.StatusOK {
		waitFor(t, 5*time.Second, "channel shop among the suggestions", func() (bool, string) {
			opts := eval[[]string](b, "[...document.querySelectorAll('#channel-list option')].map(o => o.value)")
			return len(opts) == 1 && opts[0] == "shop", fmt.Sprint(opts)
		})
	}

	// Open the channel: the newest 100 lines of history, then live.
	b.run("open channel", chromedp.SendKeys(chromedp.CSS("#channel"), "shop"), chromedp.Click(chromedp.CSS("#open")))
	b.waitStatus("live", 10*time.Second)
	b.waitLog("path=/items/149 ", 5*time.Second)
	if got := b.offsets(); len(got) != 100 || !contiguous(got) || !strings.Contains(b.text("#log .line"), "path=/items/50 ") {
		t.Fatalf("history: offsets %v, first line %q; want 100 in a row from /items/50", got, b.text("#log .line"))
	}
	pageURL := eval[string](b, "location.href")
	if strings.Contains(pageURL, c.Pass) || strings.Contains(pageURL, c.ID) {
		t.Errorf("the credential is in the page URL %q", pageURL)
	}

	phase("live")
	// A message sent over TCP appears within a second.
	start := time.Now()
	write(t, conn, syslogLine(tok, "web.1", "live one: checkout completed order=8812"))
	b.waitLog("live one: checkout completed", 5*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the message appeared on the page after %v, want < 1s", d)
	} else {
		t.Logf("TCP → page: %v", d.Round(time.Millisecond))
	}

	// Logged HTML is shown as text: no element, no alert.
	xss := `<script>alert(1)</script><img src=x onerror=alert(2)> xss-probe`
	write(t, conn, syslogLine(tok, "web.2", xss))
	b.waitLog("xss-probe", 5*time.Second)
	elems := eval[int](b, "document.querySelectorAll('#log script, #log img').length")
	if elems != 0 || !b.logHas(xss) {
		t.Errorf("logged HTML: %d script/img elements in the log, text shown %v; want 0 and the literal text", elems, b.logHas(xss))
	}

	// Client-side filter.
	b.run("filter", chromedp.SendKeys(chromedp.CSS("#filter"), "xss-probe"))
	waitFor(t, 5*time.Second, "the filter to leave one line", func() (bool, string) {
		shown := eval[int](b, "document.querySelectorAll('#log .line:not(.hidden)').length")
		return shown == 1, fmt.Sprint(shown, " lines shown")
	})
	eval[bool](b, "(() => { const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); return true })()")

	phase("older")
	// Older history by pages: /items/0 to /items/49 come before /items/50.
	b.run("load older", chromedp.Click(chromedp.CSS("#older")))
	b.waitLog("path=/items/0 ", 5*time.Second)
	if got := b.offsets(); len(got) != 152 || !contiguous(got) || !strings.Contains(b.text("#log .line"), "path=/items/0 ") {
		t.Fatalf("after loading older: offsets %v, first line %q; want 152 in a row from /items/0", got, b.text("#log .line"))
	}

	phase("drains")
	// The drain with its destination (password hidden) and its last error.
	waitFor(t, 10*time.Second, "the drain's last error on the page", func() (bool, string) {
		eval[bool](b, "document.getElementById('drains-refresh').click(), true")
		rows := b.text("#drains tbody")
		return strings.Contains(rows, "user:***@") && b.text("#drains td.err") != "", rows
	})
	if rows := b.text("#drains"); strings.Contains(rows, "secret") {
		t.Errorf("the drain password is shown: %q", rows)
	}

	phase("pause")
	// Pause stops updates; resume shows what came meanwhile.
	b.run("pause", chromedp.Click(chromedp.CSS("#pause")))
	b.waitStatus("paused", 5*time.Second)
	write(t, conn, syslogLine(tok, "worker.1", "while paused: job 77 done"))
	waitFor(t, 5*time.Second, "the server to hold the paused message", func() (bool, string) {
		h := s.history(t, "shop", 5)
		return strings.Contains(h, "while paused"), h
	})
	// A live page shows a stored message within milliseconds (above); give
	// it a generous moment to show that it does not.
	time.Sleep(300 * time.Millisecond)
	if b.logHas("while paused") {
		t.Fatal("a paused page showed a new message")
	}
	b.run("resume", chromedp.Click(chromedp.CSS("#pause")))
	b.waitLog("while paused: job 77 done", 5*time.Second)
	b.waitStatus("live", 5*time.Second)

	phase("restart")
	// A server restart: the page reconnects by itself and resumes after
	// the last message it showed, including what arrived before it was back.
	s.Restart()
	if s.Addrs.API != apiAddr {
		t.Fatalf("after restart the API listens on %s, want %s", s.Addrs.API, apiAddr)
	}
	conn = dialTCP(t, s.Addrs.SyslogTCP)
	write(t, conn, syslogLine(tok, "web.1", "after restart 1")+syslogLine(tok, "web.2", "after restart 2"))
	b.waitLog("after restart 2", 15*time.Second)
	b.waitStatus("live", 5*time.Second)
	reconnects := eval[string](b, "document.getElementById('status').dataset.reconnects || ''")
	if reconnects == "0" || reconnects == "" {
		t.Errorf("reconnects = %q after a restart, want > 0", reconnects)
	}
	write(t, conn, syslogLine(tok, "web.1", "after restart 3"))
	b.waitLog("after restart 3", 5*time.Second)
	// 150 + live + HTML + paused + 3 after the restart, every offset once.
	if got := b.offsets(); len(got) != 156 || !contiguous(got) {
		t.Fatalf("offsets after the restart: %v, want 156 in a row (no gap, no duplicate)", got)
	}
	if n := b.dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened (logged HTML ran)", n)
	}

	phase("done")
	if *uiScreenshot != "" {
		eval[bool](b, "window.scrollTo(0, 0), document.getElementById('log').scrollTop = 1e9, true")
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*uiScreenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// contiguous reports whether offsets go up by exactly one.
func contiguous(o []int) bool {
	for i := 1; i < len(o); i++ {
		if o[i] != o[i-1]+1 {
			return false
		}
	}
	return true
}
