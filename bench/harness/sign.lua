-- wrk script: every request is a new purchase order, signed with Standard Webhooks.
--
-- Signing happens here, per request, with OpenSSL's HMAC through LuaJIT's FFI: wrk itself links
-- libcrypto (for https), so the library is always there, and one HMAC-SHA256 of a 1 KB body
-- costs about a microsecond. Each request gets its own webhook-id and PO number (thread number
-- and counter), so the gateway never answers from its dedup table, and a fresh timestamp, so
-- runs of any length stay inside the 5-minute signature tolerance.
--
-- Arguments (after `--`): an epoch digit (0-9) that keeps the sequence numbers of several runs
-- against one gateway apart, then the path of a Lua file returning
--   { run = "<token>", head = "<body before the digits>", tail = "<body after>",
--     partners = { { path = "/webhooks/p/purchase_order", key = "<raw HMAC key>" }, ... } }
-- done() (summary.lua) prints one line "BENCH_WRK_JSON {...}" with the counts and latency
-- percentiles.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")

local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
]]

local loaded, crypto = pcall(ffi.load, "libcrypto.so.3")
if not loaded then
  crypto = ffi.C -- symbols of the libcrypto wrk was linked against
end

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local cfg, md, digest, digest_len, b64
local counter = 0
local headers = {}

function init(args)
  local epoch = tonumber(args[1])
  cfg = dofile(args[2])
  md = crypto.EVP_sha256()
  digest = ffi.new("unsigned char[32]")
  digest_len = ffi.new("unsigned int[1]")
  b64 = ffi.new("unsigned char[64]")
  headers["Content-Type"] = "application/json"
  -- 10-digit sequence numbers: epoch, then thread number, then the thread's counter.
  counter = epoch * 1000000000 + thread_number * 100000000
end

function request()
  counter = counter + 1
  local partner = cfg.partners[(counter % #cfg.partners) + 1]
  local seq = string.format("%010d", counter)
  local body = cfg.head .. seq .. cfg.tail
  local id = "msg_" .. cfg.run .. "_" .. seq
  local ts = tostring(os.time())
  local signed = id .. "." .. ts .. "." .. body
  crypto.HMAC(md, partner.key, #partner.key, signed, #signed, digest, digest_len)
  local n = crypto.EVP_EncodeBlock(b64, digest, 32)
  headers["webhook-id"] = id
  headers["webhook-timestamp"] = ts
  headers["webhook-signature"] = "v1," .. ffi.string(b64, n)
  return wrk.format("POST", partner.path, headers, body)
end
