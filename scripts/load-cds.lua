-- wrk script: the documented CDS Hooks call (docs/examples/cds-appointment-book.json), run from
-- the repository root: wrk -t2 -c8 -d10s -s scripts/load-cds.lua --latency \
--   http://127.0.0.1:8080/cds-services/treatment-eligibility
local f = io.open("docs/examples/cds-appointment-book.json", "r")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
