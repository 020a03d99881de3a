package forward

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
)

// fileState is what the state file remembers of one file.
//
// A file is known by device and inode, checked against a fingerprint of
// its first bytes (FP over FPLen bytes, up to fpMax) so that a recycled
// inode or a file truncated while the forwarder was down is not taken for
// the file it was. Gen counts the truncations seen; with KeyFP (a hash of
// the first bytes when the generation began) it makes the batch keys of a
// new generation differ from the old one's.
//
// Acked is the offset up to which the server acknowledged. Sent, when
// above Acked, is the end of the batch that was being sent when the state
// was written: that batch was cut by time (not by size), so after a
// restart the first batch is cut at Sent again and gets the same key.
type fileState struct {
	Path  string `json:"path"`
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Gen   int    `json:"gen"`
	KeyFP string `json:"key_fp,omitempty"`
	FP    string `json:"fp,omitempty"`
	FPLen int    `json:"fp_len,omitempty"`
	Acked int64  `json:"acked"`
	Sent  int64  `json:"sent,omitempty"`
	Seen  int64  `json:"seen"` // Unix seconds when the file was last followed
}

// fpMax is how many leading bytes the check fingerprint covers.
const fpMax = 1024

// keyFPMax is how many leading bytes the key fingerprint covers.
const keyFPMax = 64

// forgetAfter is how long a file no longer followed stays in the state.
const forgetAfter = 7 * 24 * time.Hour

type devIno struct{ dev, ino uint64 }

// state is the forwarder's state file in memory.
type state struct {
	path string

	mu    sync.Mutex
	files map[devIno]*fileState
	dirty bool
}

func loadState(path string) (*state, error) {
	s := &state{path: path, files: make(map[devIno]*fileState)}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var doc struct {
		Files []*fileState `json:"files"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("state file %s: %w (move it away to start over)", path, err)
	}
	for _, f := range doc.Files {
		s.files[devIno{f.Dev, f.Ino}] = f
	}
	return s, nil
}

// save writes the state file atomically (temp file, fsync, rename).
func (s *state) save() error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	now := time.Now().Unix()
	doc := struct {
		Files []fileState `json:"files"`
	}{}
	for k, f := range s.files {
		if now-f.Seen > int64(forgetAfter/time.Second) {
			delete(s.files, k)
			continue
		}
		doc.Files = append(doc.Files, *f)
	}
	s.dirty = false
	s.mu.Unlock()
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := renameio.WriteFile(s.path, b, 0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// identify returns the device and inode of a file.
func identify(fi os.FileInfo) (devIno, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return devIno{}, false
	}
	return devIno{uint64(st.Dev), uint64(st.Ino)}, true
}

// prefixHash hashes the first n bytes of f (false if it has fewer).
func prefixHash(f io.ReaderAt, n int) (string, bool) {
	if n <= 0 {
		return "", true
	}
	buf := make([]byte, n)
	if m, err := f.ReadAt(buf, 0); m < n {
		_ = err
		return "", false
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8]), true
}
