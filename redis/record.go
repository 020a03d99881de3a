package redis

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/plexus-router/plexus/channels"
)

// A stream entry holds several consecutive messages of one channel. Its
// field "d" is their concatenation, each message framed as
//
//	uint32 big-endian length | int64 big-endian ingest time (Unix ns) | data
//
// and its ID is "<last offset>-<count>": the entry holds offsets
// last-count+1 .. last. IDs grow with offsets, so "XRANGE key <o> +" starts
// at the entry containing offset o, and "XTRIM key MINID <o>" drops exactly
// the entries whose messages are all older than o.
const recordHeader = 12

// appendRecord appends one framed message to d.
func appendRecord(d []byte, t int64, msg []byte) []byte {
	d = binary.BigEndian.AppendUint32(d, uint32(len(msg)))
	d = binary.BigEndian.AppendUint64(d, uint64(t))
	return append(d, msg...)
}

var errBadEntry = errors.New("malformed stream entry")

// entryID formats the stream ID of an entry.
func entryID(last uint64, count int) string {
	return strconv.FormatUint(last, 10) + "-" + strconv.Itoa(count)
}

// parseEntryID splits "<last>-<count>".
func parseEntryID(id string) (last uint64, count uint64, err error) {
	i := strings.IndexByte(id, '-')
	if i < 0 {
		return 0, 0, errBadEntry
	}
	if last, err = strconv.ParseUint(id[:i], 10, 64); err != nil {
		return 0, 0, errBadEntry
	}
	if count, err = strconv.ParseUint(id[i+1:], 10, 64); err != nil || count == 0 || count > last {
		return 0, 0, errBadEntry
	}
	return last, count, nil
}

// decodeEntry calls fn for each message of an entry with its offset, in
// order, until fn returns false. first is the offset of its first message.
func decodeEntry(first uint64, d string, fn func(off uint64, t int64, msg string) bool) error {
	off := first
	for len(d) > 0 {
		if len(d) < recordHeader {
			return errBadEntry
		}
		n := int(binary.BigEndian.Uint32([]byte(d[:4])))
		t := int64(binary.BigEndian.Uint64([]byte(d[4:12])))
		if len(d)-recordHeader < n {
			return errBadEntry
		}
		if !fn(off, t, d[recordHeader:recordHeader+n]) {
			return nil
		}
		d = d[recordHeader+n:]
		off++
	}
	return nil
}

// addRecords is decodeEntry into a Records, skipping offsets before from,
// stopping at limit records or when maxBytes would be exceeded (after at
// least one record). It returns the offset after the last added record
// (or from) and whether it stopped early.
func addRecords(dst *channels.Records, first, from uint64, d string, limit, maxBytes int) (next uint64, full bool, err error) {
	next = from
	err = decodeEntry(first, d, func(off uint64, t int64, msg string) bool {
		if off < from {
			return true
		}
		if limit > 0 && dst.Len() >= limit || maxBytes > 0 && dst.Len() > 0 && dst.Bytes()+len(msg) > maxBytes {
			full = true
			return false
		}
		dst.Add(off, t, stringBytes(msg))
		next = off + 1
		return true
	})
	return next, full, err
}
