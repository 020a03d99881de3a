package redis

import "unsafe"

// stringBytes returns the bytes of s without copying; the result must not
// be modified (Records.Add only copies from it).
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
