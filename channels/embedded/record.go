package embedded

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
)

// The write-ahead log is a sequence of records. Every record starts with a
// fixed header (little endian):
//
//	0   crc32c   uint32  Castagnoli CRC of bytes [4, size)
//	4   size     uint32  size of the whole record, header included
//	8   type     uint8   recBatch or recDelete
//	9   -        uint8   zero
//	10  chanLen  uint16  length of the channel id
//	12  count    uint32  messages in the record (batch)
//	16  first    uint64  offset of the first message (batch)
//	24  time     int64   ingest time, Unix nanoseconds (batch)
//	32  epoch    [8]byte the channel's epoch (batch)
//	40  dataLen  uint32  bytes of message data (batch)
//	44  keyLen   uint32  length of the idempotency key digest (batch): 0 or keySize
//	48  channel id, then the key digest, then count uvarint message
//	    lengths, then the data
//
// Records written before keys existed have zero at 44 and read the same.
//
// A record never spans two segment files. The CRC covers everything after
// itself, so a torn write (a record cut short by a crash) or a flipped bit
// is detected when the record is read.
const (
	headerSize = 48
	recBatch   = 1
	recDelete  = 2

	// maxRecord bounds one record; a larger size field is corruption.
	maxRecord = 64 << 20
	// maxChannelID bounds channel ids stored in records.
	maxChannelID = 1<<16 - 1
	// keySize is the size of an idempotency key digest (see dedup.go).
	keySize = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record that fails its checks.
var errCorrupt = errors.New("corrupt record")

// header is a decoded record header.
type header struct {
	size    uint32
	typ     uint8
	chanLen uint16
	count   uint32
	first   uint64
	time    int64
	epoch   [8]byte
	dataLen uint32
	keyLen  uint32
}

// parseHeader decodes and sanity-checks a header (not the CRC).
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, errCorrupt
	}
	h := header{
		size:    binary.LittleEndian.Uint32(b[4:]),
		typ:     b[8],
		chanLen: binary.LittleEndian.Uint16(b[10:]),
		count:   binary.LittleEndian.Uint32(b[12:]),
		first:   binary.LittleEndian.Uint64(b[16:]),
		time:    int64(binary.LittleEndian.Uint64(b[24:])),
		dataLen: binary.LittleEndian.Uint32(b[40:]),
		keyLen:  binary.LittleEndian.Uint32(b[44:]),
	}
	copy(h.epoch[:], b[32:40])
	switch {
	case h.size < headerSize || h.size > maxRecord,
		h.typ != recBatch && h.typ != recDelete,
		h.keyLen != 0 && (h.keyLen != keySize || h.typ != recBatch),
		uint64(headerSize)+uint64(h.chanLen)+uint64(h.keyLen)+uint64(h.dataLen) > uint64(h.size),
		h.typ == recBatch && (h.count == 0 || h.first == 0 || uint64(h.count) > uint64(h.size)):
		return header{}, errCorrupt
	}
	return h, nil
}

// checkCRC verifies a whole record.
func checkCRC(rec []byte) bool {
	return len(rec) >= headerSize &&
		binary.LittleEndian.Uint32(rec) == crc32.Checksum(rec[4:], castagnoli)
}

// batchRecordSize returns the size of the record for n messages of
// dataLen bytes in all, whose lengths are given by ends (cumulative).
func batchRecordSize(channelID string, key *[keySize]byte, ends []int) int {
	n := headerSize + len(channelID)
	if key != nil {
		n += keySize
	}
	start := 0
	for _, e := range ends {
		n += uvarintLen(uint64(e - start))
		start = e
	}
	return n + start
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// putBatchRecord encodes a batch record into dst, which has exactly the
// size batchRecordSize returned, and sets its CRC. key may be nil.
func putBatchRecord(dst []byte, channelID string, key *[keySize]byte, epoch [8]byte, first uint64, t int64, data []byte, ends []int) {
	putHeader(dst, recBatch, channelID, uint32(len(ends)), first, t, epoch, uint32(len(data)))
	p := headerSize + copy(dst[headerSize:], channelID)
	if key != nil {
		binary.LittleEndian.PutUint32(dst[44:], keySize)
		p += copy(dst[p:], key[:])
	}
	start := 0
	for _, e := range ends {
		p += binary.PutUvarint(dst[p:], uint64(e-start))
		start = e
	}
	copy(dst[p:], data)
	binary.LittleEndian.PutUint32(dst, crc32.Checksum(dst[4:], castagnoli))
}

// deleteRecord returns a tombstone for a channel.
func deleteRecord(channelID string) []byte {
	dst := make([]byte, headerSize+len(channelID))
	putHeader(dst, recDelete, channelID, 0, 0, 0, [8]byte{}, 0)
	copy(dst[headerSize:], channelID)
	binary.LittleEndian.PutUint32(dst, crc32.Checksum(dst[4:], castagnoli))
	return dst
}

func putHeader(dst []byte, typ uint8, channelID string, count uint32, first uint64, t int64, epoch [8]byte, dataLen uint32) {
	clear(dst[:headerSize])
	binary.LittleEndian.PutUint32(dst[4:], uint32(len(dst)))
	dst[8] = typ
	binary.LittleEndian.PutUint16(dst[10:], uint16(len(channelID)))
	binary.LittleEndian.PutUint32(dst[12:], count)
	binary.LittleEndian.PutUint64(dst[16:], first)
	binary.LittleEndian.PutUint64(dst[24:], uint64(t))
	copy(dst[32:40], epoch[:])
	binary.LittleEndian.PutUint32(dst[40:], dataLen)
}

// recordChannel returns the channel id of a checked record.
func recordChannel(rec []byte, h header) []byte {
	return rec[headerSize : headerSize+int(h.chanLen)]
}

// recordKey returns the idempotency key digest of a checked record (false:
// none).
func recordKey(rec []byte, h header) ([keySize]byte, bool) {
	var k [keySize]byte
	if h.keyLen != keySize {
		return k, false
	}
	p := headerSize + int(h.chanLen)
	copy(k[:], rec[p:p+keySize])
	return k, true
}

// messages walks the messages of a checked batch record, calling fn with
// each message's offset and data until fn returns false. It returns
// errCorrupt if the lengths do not add up.
func messages(rec []byte, h header, fn func(off uint64, data []byte) bool) error {
	p := headerSize + int(h.chanLen) + int(h.keyLen)
	dataStart := len(rec) - int(h.dataLen)
	if dataStart < p {
		return errCorrupt
	}
	lens, data := rec[p:dataStart], rec[dataStart:]
	pos := 0
	for i := range h.count {
		n, k := binary.Uvarint(lens)
		if k <= 0 || n > uint64(len(data)-pos) {
			return errCorrupt
		}
		lens = lens[k:]
		if !fn(h.first+uint64(i), data[pos:pos+int(n)]) {
			return nil
		}
		pos += int(n)
	}
	return nil
}

// epochString renders an epoch as the log's readers see it.
func epochString(e [8]byte) string { return hex.EncodeToString(e[:]) }

// parseEpoch is epochString's inverse (false for an epoch this log did
// not make).
func parseEpoch(s string) ([8]byte, bool) {
	var e [8]byte
	if len(s) != 16 {
		return e, false
	}
	_, err := hex.Decode(e[:], []byte(s))
	return e, err == nil
}
