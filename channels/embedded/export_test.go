package embedded

import (
	"os"
	"time"
)

// Test hooks for package channels_test.

// Journal and cursor file names.
const (
	JournalFileForTest = journalFile
	CursorsFileForTest = cursorsFile
)

// CrashForTest stops the store as a crash would: no cursor flush, files
// closed, lock released, in-memory state abandoned.
func (s *Store) CrashForTest() {
	s.mu.Lock()
	s.closed = true
	s.ready.Store(false)
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	s.flushMu.Lock() // wait out a flush in progress
	s.journal.Close()
	s.lock.Close()
	s.flushMu.Unlock()
	s.reg.Close()
}

// SetCompactMinForTest changes the size below which the journal is never
// compacted at run time.
func (s *Store) SetCompactMinForTest(n int64) {
	s.mu.Lock()
	s.compactMin = n
	s.mu.Unlock()
}

// JournalSizesForTest returns the journal size and the size it had right
// after the last compaction.
func (s *Store) JournalSizesForTest() (journal, snapshot int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.journalSize, s.snapshotSize
}

// SetStoreIntervalsForTest sets the cursor flush and session sweep
// intervals of stores opened afterwards; the returned func restores them.
func SetStoreIntervalsForTest(flush, sweep time.Duration) (restore func()) {
	f, s := cursorFlushInterval, sessionSweepInterval
	cursorFlushInterval, sessionSweepInterval = flush, sweep
	return func() { cursorFlushInterval, sessionSweepInterval = f, s }
}

// SweepNow runs the age sweep at once (for tests in package channels_test).
func (l *Log) SweepNow() { l.sweep() }

// CrashForTest stops the log as a kill -9 would: no final commit, no
// checkpoint; the files are closed as the operating system would close
// them (what was written to them stays, synced or not).
func (l *Log) CrashForTest() {
	l.wmu.Lock()
	l.closed = true
	l.wmu.Unlock()
	l.isClosed.Store(true)
	close(l.stop)
	// The committer's last commit must not run: stop it by waiting only
	// for the janitor's exit and abandoning the committer's final sync.
	l.wg.Wait()
	l.closeFiles()
}

// SetWriteForTest replaces the function that writes to segment files.
func (l *Log) SetWriteForTest(w func(f *os.File, p []byte) (int, error)) {
	l.wmu.Lock()
	l.write = w
	l.wmu.Unlock()
}

// CommitNow runs a group commit at once.
func (l *Log) CommitNow() { l.commit() }

// Waiters returns how many readers wait on a channel.
func (l *Log) Waiters(ch string) int {
	c := l.lookup(ch)
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiters
}

// Unsynced returns how many rolled segments wait for their sync.
func (l *Log) Unsynced() int {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return len(l.unsynced)
}
