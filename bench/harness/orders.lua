-- wrk script of the orders scenario: every request a new order of the bench customer,
-- POST /api/v1/orders with the account's API key and an Idempotency-Key of its own (the run
-- token, then epoch, thread number and counter, as sign.lua numbers its webhooks), so the
-- gateway never answers one from its idempotency record. The customer PO number carries the
-- same sequence number.
--
-- Each 202's order id and message id go to a file per thread (answered-<epoch>-<thread>.txt in
-- the input's `answered` folder), which the scenario checks against the gateway's store after
-- the run: every order answered 202 must be there exactly once.
--
-- Arguments (after `--`): an epoch digit (0-9), then the path of a Lua file returning
--   { run = "<token>", key = "<API key>", head = "<body before the digits>",
--     tail = "<body after>", answered = "<folder>" }
-- done() (summary.lua) prints the BENCH_WRK_JSON line bench/harness/wrk.py parses.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")

local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

local cfg, answered
local counter = 0
local headers = {}

function init(args)
  local epoch = tonumber(args[1])
  cfg = dofile(args[2])
  headers["Content-Type"] = "application/json"
  headers["x-api-key"] = cfg.key
  counter = epoch * 1000000000 + thread_number * 100000000
  local path = string.format("%s/answered-%d-%d.txt", cfg.answered, epoch, thread_number)
  answered = assert(io.open(path, "w"))
end

function request()
  counter = counter + 1
  local seq = string.format("%010d", counter)
  headers["Idempotency-Key"] = "bench-" .. cfg.run .. "-" .. seq
  return wrk.format("POST", "/api/v1/orders", headers, cfg.head .. seq .. cfg.tail)
end

function response(status, _, body)
  if status == 202 then
    local order_id = body:match('"order_id":"([^"]*)"') or "?"
    local message_id = body:match('"message_id":"([^"]*)"') or "?"
    answered:write(order_id, " ", message_id, "\n")
  end
end
