package service

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mbackup/mbackup/cmd/internal/state"
)

// metrics is the service's private Prometheus registry. Per-environment
// gauges are computed at scrape time from the same status as /status, so
// the two never disagree and environments removed by a reload disappear;
// failure counters count failed attempts since the process started.
type metrics struct {
	s   *Service
	reg *prometheus.Registry

	backupFailures *prometheus.CounterVec
	jobFailures    *prometheus.CounterVec
	running        *prometheus.GaugeVec

	lastSuccess, lastDuration, lastAdded, lastSize, snapshots, overdue, lastFailed *prometheus.Desc
	repoSize, jobLastSuccess                                                       *prometheus.Desc
}

func newMetrics(s *Service, version string) *metrics {
	env := []string{"env"}
	m := &metrics{
		s:   s,
		reg: prometheus.NewRegistry(),
		backupFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mbackup_backup_failures_total", Help: "Failed backup attempts since the service started."}, env),
		jobFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mbackup_job_failures_total", Help: "Failed attempts of repository jobs (prune, check) and staging refreshes since the service started."}, []string{"job", "env"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mbackup_job_running", Help: "1 while the job runs."}, []string{"job", "env"}),
		lastSuccess: prometheus.NewDesc("mbackup_backup_last_success_timestamp_seconds",
			"Time of the newest successful snapshot (Unix seconds).", env, nil),
		lastDuration: prometheus.NewDesc("mbackup_backup_last_duration_seconds",
			"Duration of the last successful backup run by the service.", env, nil),
		lastAdded: prometheus.NewDesc("mbackup_backup_last_added_bytes",
			"Bytes the newest snapshot added to the repository after deduplication and compression.", env, nil),
		lastSize: prometheus.NewDesc("mbackup_backup_last_size_bytes",
			"Database dump plus moodledata of the newest snapshot, before deduplication.", env, nil),
		snapshots: prometheus.NewDesc("mbackup_snapshots",
			"Snapshots in the repository.", env, nil),
		overdue: prometheus.NewDesc("mbackup_backup_overdue",
			"1 when the environment has no success within its schedule plus the margin.", env, nil),
		lastFailed: prometheus.NewDesc("mbackup_backup_last_run_failed",
			"1 when the environment's last backup run failed.", env, nil),
		repoSize: prometheus.NewDesc("mbackup_repository_size_bytes",
			"Bytes stored in the repository (packs, index, snapshots, keys, locks).", nil, nil),
		jobLastSuccess: prometheus.NewDesc("mbackup_job_last_success_timestamp_seconds",
			"Time of the last success of a repository job or staging refresh (Unix seconds).", []string{"job", "env"}, nil),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mbackup_build_info", Help: "Version of the running mbackup."},
		[]string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(m, m.backupFailures, m.jobFailures, m.running, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.lastSuccess, m.lastDuration, m.lastAdded, m.lastSize, m.snapshots,
		m.overdue, m.lastFailed, m.repoSize, m.jobLastSuccess} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.s.mu.Lock()
	recs := make(map[string]state.Record, len(m.s.records))
	for k, r := range m.s.records {
		recs[k] = r
	}
	size := m.s.repoSize
	m.s.mu.Unlock()

	for _, e := range m.s.Status() {
		if e.LastSuccess != nil {
			gauge(m.lastSuccess, float64(e.LastSuccessTime.UnixNano())/1e9, e.Env)
		}
		if e.LastSnapshot != nil {
			gauge(m.lastAdded, float64(e.AddedBytes), e.Env)
			gauge(m.lastSize, float64(e.SizeBytes), e.Env)
		}
		if r, ok := recs[state.Key(state.JobBackup, e.Env)]; ok && r.LastDuration > 0 {
			gauge(m.lastDuration, r.LastDuration, e.Env)
		}
		gauge(m.snapshots, float64(e.Snapshots), e.Env)
		gauge(m.overdue, b(e.Overdue), e.Env)
		gauge(m.lastFailed, b(e.Failed), e.Env)
	}
	if size >= 0 {
		gauge(m.repoSize, float64(size))
	}
	for _, r := range recs {
		if r.Job != state.JobBackup && r.Job != "" && !r.LastSuccess.IsZero() {
			gauge(m.jobLastSuccess, float64(r.LastSuccess.UnixNano())/1e9, r.Job, r.Env)
		}
	}
}

// prepare creates the failure series of every environment at zero, so
// that rate() and increase() work from the first failure on.
func (m *metrics) prepare(envs []string) {
	for _, e := range envs {
		m.backupFailures.WithLabelValues(e)
	}
}

func (m *metrics) failed(job, env string) {
	if job == state.JobBackup {
		m.backupFailures.WithLabelValues(env).Inc()
		return
	}
	m.jobFailures.WithLabelValues(job, env).Inc()
}

func (m *metrics) setRunning(job, env string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.running.WithLabelValues(job, env).Set(v)
}
