package embedded

import "time"

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
func (l *Log) SweepNow() { l.sweep(nil) }
