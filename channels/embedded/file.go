package embedded

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// replaceFile replaces dir/name atomically with what write writes: a
// temporary file in dir, fsynced and renamed over the old one (renameio),
// then dir is fsynced so that the rename survives a crash too. It returns
// the size written. A failure leaves the old file in place.
func replaceFile(dir, name string, write func(io.Writer) error) (int64, error) {
	f, err := renameio.NewPendingFile(filepath.Join(dir, name), renameio.WithTempDir(dir))
	if err != nil {
		return 0, err
	}
	defer f.Cleanup()
	cw := &storeCountingWriter{w: f}
	if err := write(cw); err != nil {
		return 0, err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return 0, err
	}
	return cw.n, syncDir(dir)
}

// syncDir fsyncs a directory, making renames and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
