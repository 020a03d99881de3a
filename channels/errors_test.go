package channels

import (
	"context"
	"errors"
	"io"
	"testing"
)

func TestErrorfWrapsCause(t *testing.T) {
	e := Errorf(CodeUnavailable, "read %s: %w", "x", io.EOF)
	if e.Message != "read x: EOF" || e.Code != CodeUnavailable || e.Unwrap() != io.EOF || !errors.Is(e, io.EOF) {
		t.Errorf("Errorf(%%w) = %#v, Unwrap %v", e, e.Unwrap())
	}
	if e := Errorf(CodeInvalid, "bad value %v", 3); e.Message != "bad value 3" || e.Unwrap() != nil {
		t.Errorf("Errorf without %%w = %#v", e)
	}
	two := Errorf(CodeInternal, "%w and %w", io.EOF, context.Canceled)
	if !errors.Is(two, io.EOF) || !errors.Is(two, context.Canceled) || two.Message != "EOF and context canceled" {
		t.Errorf("Errorf with two %%w = %#v", two)
	}
	// The outermost *Error gives the code; the inner one stays reachable.
	outer := Errorf(CodeInternal, "store: %w", ErrClosed)
	if ErrorCode(outer) != CodeInternal || !errors.Is(outer, ErrClosed) {
		t.Errorf("ErrorCode(%v) = %v, Is(ErrClosed) = %v", outer, ErrorCode(outer), errors.Is(outer, ErrClosed))
	}
}
