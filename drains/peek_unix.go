//go:build unix

package drains

import (
	"net"
	"syscall"
)

// peerClosed reports whether the peer of a TCP connection has closed or
// reset it, without consuming anything: a non-blocking MSG_PEEK on the
// socket. Checked before each write so that a batch is not written into a
// connection that can no longer deliver it.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	var b [1]byte
	err = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		default:
			closed = true
		}
	})
	return closed || err != nil
}
