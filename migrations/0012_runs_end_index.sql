-- One index for a run's end instead of two.  The timeline and the exporter
-- find the run an end event closed by its end time and eventId; the stats
-- read the runs that ended in a time range.  An index on (end_time,
-- end_event_id) serves both, and each ended run enters one index less,
-- which is most of what storing a run costs beyond its row.
CREATE INDEX scenario_runs_end_idx ON scenario_runs (end_time, end_event_id)
    WHERE end_time IS NOT NULL;
COMMENT ON INDEX scenario_runs_end_idx IS 'Ended runs by end time (the stats'' ranges) and end event (the timeline''s and the exporter''s lookup of an end event''s run).';
DROP INDEX scenario_runs_end_event_idx;
DROP INDEX scenario_runs_end_time_idx;
