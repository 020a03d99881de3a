//go:build !unix

package syslog

import (
	"errors"
	"net"
)

var errWouldBlock = errors.New("syslog: no datagram waiting")

// udpReader without a non-blocking check: every datagram is flushed.
type udpReader struct {
	c *net.UDPConn
}

func newUDPReader(c *net.UDPConn) *udpReader { return &udpReader{c: c} }

func (u *udpReader) read(buf []byte, block bool) (int, error) {
	if !block {
		return 0, errWouldBlock
	}
	return u.c.Read(buf)
}
