-- ListLogs filters on model, saved config and the fallback marker; like the other filter columns,
-- each leads an index that then serves the newest-first order.
CREATE INDEX request_logs_by_model ON request_logs (model, create_time, id);
CREATE INDEX request_logs_by_config ON request_logs (config_id, create_time, id);
CREATE INDEX request_logs_by_fallback ON request_logs (fallback_used, create_time, id);
