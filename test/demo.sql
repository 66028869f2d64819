-- The demo database: flowstate installed, its workers shown
CREATE EXTENSION IF NOT EXISTS flowstate;
