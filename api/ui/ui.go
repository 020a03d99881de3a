// Package ui serves the web page of Plexus at /ui/: sign in with a
// credential, pick a channel, watch its live tail, pause, filter, load older
// history and see the channel's drains. The page is plain HTML, CSS and
// JavaScript embedded in the binary; it talks only to the management API of
// the listener it came from (docs/ui.md).
//
// Every response carries a strict Content-Security-Policy (scripts and
// styles only from the page's own origin, no inline code, no frames), and
// the page inserts log text as text, never as HTML.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Prefix is the path the page is served under.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every UI response: nothing runs
// but the page's own script file, and the page connects only to its origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the embedded files under Prefix (index.html for the
// directory itself). The path must keep the prefix: mount it as is.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		files.ServeHTTP(w, r)
	})
}
