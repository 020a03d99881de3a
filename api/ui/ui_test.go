package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

// TestFiles: the page and its assets are served with their types and the
// strict security headers; other methods are refused.
func TestFiles(t *testing.T) {
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/ui/", "text/html", `<script src="app.js" defer></script>`},
		{"/ui/app.js", "javascript", "textContent"},
		{"/ui/app.css", "text/css", ".log"},
	} {
		resp := get(t, http.MethodGet, tc.path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) ||
			!strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s = %d %q, body has %q: %v; want 200 %s", tc.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), tc.contains, strings.Contains(string(body), tc.contains), tc.ctype)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": CSP,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", tc.path, k, got, want)
			}
		}
	}
	if resp := get(t, http.MethodGet, "/ui/missing.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/missing.js = %d, want 404", resp.StatusCode)
	}
	if resp := get(t, http.MethodPost, "/ui/"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/ = %d, want 405", resp.StatusCode)
	}
}

// TestCSPStrict: scripts only from the page's origin, nothing inline, no
// eval; the policy is only worth something if the page needs no more.
func TestCSPStrict(t *testing.T) {
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "data:", "http:"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP %q allows %s", CSP, bad)
		}
	}
	if !strings.Contains(CSP, "script-src 'self'") || !strings.Contains(CSP, "default-src 'none'") {
		t.Errorf("CSP %q: want default-src 'none' and script-src 'self'", CSP)
	}
	html := read(t, "static/index.html")
	if m := regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>|\son[a-z]+\s*=|\sstyle\s*=`).FindString(html); m != "" {
		t.Errorf("index.html has inline code or style the CSP would block: %q", m)
	}
}

// TestNoHTMLInsertion: the script never parses data as HTML (log lines
// and API values are inserted as text).
func TestNoHTMLInsertion(t *testing.T) {
	js := read(t, "static/app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "createContextualFragment"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := static.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
