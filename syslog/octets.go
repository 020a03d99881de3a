package syslog

import "errors"

// ErrMalformed is returned by [SplitOctets] for a body that is not a
// sequence of valid octet-counted frames.
var ErrMalformed = errors.New("syslog: malformed octet-counted frames")

// maxLenDigits bounds the LEN of an octet-counted frame: at most 9 digits.
const maxLenDigits = 9

// octetHeader reads "LEN SP" at the start of b. It returns LEN and the header
// length. more is true when b ends inside a possible header (all digits so
// far, fewer than 10 of them); ok is false when b does not start with a
// header (first byte not 1-9, a non-digit before the space, or more than 9
// digits).
func octetHeader(b []byte) (n, hlen int, more, ok bool) {
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, 0, false, false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if isDigit(c) {
			if i == maxLenDigits {
				return 0, 0, false, false
			}
			n = n*10 + int(c-'0')
			continue
		}
		if c == ' ' {
			return n, i + 1, false, true
		}
		return 0, 0, false, false
	}
	return 0, 0, true, false
}

// SplitOctets splits an application/logplex-1 body: octet-counted frames
// "LEN SP MSG" back to back, nothing else. It first checks the whole body
// and returns ErrMalformed, without calling fn, if any frame is not octet
// counted, has a LEN above maxFrame, or is truncated; otherwise it calls fn
// for every message in order and returns their number. An empty body has no
// frames. msg is valid during the call only (it aliases body). SplitOctets
// does not allocate.
func SplitOctets(body []byte, maxFrame int, fn func(msg []byte)) (n int, err error) {
	for p := 0; p < len(body); n++ {
		l, h, _, ok := octetHeader(body[p:])
		if !ok || l > maxFrame || l > len(body)-p-h {
			return 0, ErrMalformed
		}
		p += h + l
	}
	if fn == nil {
		return n, nil
	}
	for p := 0; p < len(body); {
		l, h, _, _ := octetHeader(body[p:])
		fn(body[p+h : p+h+l])
		p += h + l
	}
	return n, nil
}
