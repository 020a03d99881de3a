//go:build unix

package syslog

import (
	"errors"
	"net"
	"syscall"
)

var errWouldBlock = errors.New("syslog: no datagram waiting")

// udpReader reads datagrams without their source address (no allocation)
// and can tell whether another datagram is already waiting, so that the
// reader flushes its sink only when the socket is drained.
type udpReader struct {
	rc  syscall.RawConn
	buf []byte
	n   int
	err error
	// blocking is read by the closure below.
	blocking bool
	fn       func(fd uintptr) bool
}

func newUDPReader(c *net.UDPConn) *udpReader {
	u := &udpReader{}
	rc, err := c.SyscallConn()
	if err != nil {
		u.err = err
		return u
	}
	u.rc = rc
	u.fn = func(fd uintptr) bool {
		for {
			n, err := syscall.Read(int(fd), u.buf)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				if u.blocking {
					return false // wait until readable
				}
				u.n, u.err = 0, errWouldBlock
				return true
			}
			u.n, u.err = n, err
			return true
		}
	}
	return u
}

// read reads one datagram into buf. Without block, it returns
// errWouldBlock when none is waiting.
func (u *udpReader) read(buf []byte, block bool) (int, error) {
	if u.rc == nil {
		return 0, u.err
	}
	u.buf, u.blocking = buf, block
	if err := u.rc.Read(u.fn); err != nil {
		return 0, err
	}
	if u.err != nil {
		return 0, u.err
	}
	if u.n < 0 {
		return 0, errors.New("syslog: negative read")
	}
	return u.n, nil
}
