package cluster

import (
	"io"
	"net"
	"sync"
	"testing"
)

// cutProxy forwards loopback TCP connections to a unix socket (a Redis of
// the cluster script) until Cut: then the listener and every forwarded
// connection close, as when a node loses its network path to Redis.
// (test/redistest's Proxy does the same for servers it started itself.)
type cutProxy struct {
	sock string
	ln   net.Listener

	mu    sync.Mutex
	conns map[net.Conn]bool
	cut   bool
	wg    sync.WaitGroup
}

func newCutProxy(t testing.TB, sock string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{sock: sock, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Cut)
	return p
}

// URL is redis://127.0.0.1:port of the proxy.
func (p *cutProxy) URL() string { return "redis://" + p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("unix", p.sock)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns[c], p.conns[u] = true, true
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// Cut closes the listener (new dials are refused) and every connection.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		return
	}
	p.cut = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
