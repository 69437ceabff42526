SELECT
    l.load_id, l.survey, l.year, l.flow_run_id, l.status AS load_status,
    f.source_file, f.kind AS file_kind, f.source_url, f.fetched_at, f.landing_url, f.sha256,
    f.rows_read, f.rows_loaded, f.rows_quarantined,
    f.status, f.error, l.error AS load_error, f.loaded_at, l.started_at, l.finished_at
FROM audit.loads AS l
    LEFT JOIN audit.load_files AS f ON f.load_id = l.load_id
