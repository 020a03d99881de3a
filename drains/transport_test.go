package drains

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// closedConnError is the error of a write to a TCP connection this side
// already closed.
func closedConnError(t *testing.T) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, err = c.Write([]byte("x"))
	if err == nil {
		t.Fatal("write to a closed connection succeeded")
	}
	return err
}

func TestIsStale(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"EOF reading the response", fmt.Errorf("read response: %w", io.EOF), true},
		{"unexpected EOF", fmt.Errorf("read response: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", fmt.Errorf("send: %w", &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.ECONNRESET)}), true},
		{"broken pipe", fmt.Errorf("send: %w", &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}), true},
		{"closed connection", fmt.Errorf("send: %w", closedConnError(t)), true},
		{"only the message of a closed connection", errors.New("send: use of closed network connection"), false},
		{"timeout", fmt.Errorf("read response: %w", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}), false},
		{"malformed response", errors.New(`read response: malformed HTTP response "hello"`), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isStale(tc.err); got != tc.want {
				t.Errorf("isStale(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
