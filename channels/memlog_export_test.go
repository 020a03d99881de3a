package channels

// SweepNow runs the age sweep at once (for tests in package channels_test).
func (l *MemLog) SweepNow() { l.sweep() }
