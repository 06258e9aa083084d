package main

import (
	"sync"

	"github.com/schollz/progressbar/v3"
)

// progress is a progress bar on stderr; a nil *progress does nothing, so
// callers need not check whether stderr is a terminal.
type progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
	max int64
}

// newProgress starts a bar; total < 0 means unknown (a spinner).
func (a *app) newProgress(desc string, total int64, bytes bool) *progress {
	if !a.stderrIsTerminal() {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionFullWidth(),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...), max: total}
}

// set moves the bar to done of total (total ≤ 0 keeps the current max).
func (p *progress) set(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if total > 0 && total != p.max {
		p.max = total
		p.bar.ChangeMax64(total)
	}
	if p.max > 0 && done > p.max {
		p.max = done
		p.bar.ChangeMax64(done)
	}
	_ = p.bar.Set64(done)
}

func (p *progress) describe(desc string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bar.Describe(desc)
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Finish()
}
