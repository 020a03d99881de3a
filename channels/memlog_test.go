package channels

import (
	"context"
	"testing"
)

func TestMemLogSmoke(t *testing.T) {
	l, err := OpenMemLog(MemLogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	b := &Batch{ChannelID: "a", Time: 1}
	b.Add([]byte("one"))
	b.Add([]byte("two"))
	if err := l.Append(ctx, []*Batch{b}); err != nil {
		t.Fatal(err)
	}
	var r Records
	res, err := l.Read(ctx, "a", Cursor{}, 0, 0, &r)
	if err != nil || r.Len() != 2 || string(r.At(1).Data) != "two" || res.Next.Offset != 3 {
		t.Fatalf("Read = %+v, %v, %d records", res, err, r.Len())
	}
}
