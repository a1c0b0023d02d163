"""The Lua scripts behind every Redis write: newer-wins per key, atomic, in argument order.

Call: ``EVALSHA WRITE_SHA n key_1 .. key_n ttl grace record_1 .. record_n``; the reply is how
many records were stored. ``ttl`` is the view's ttl in ms (rounded up, at most ``MAX_TTL_MS``)
or ``-1`` for none; ``grace`` the ms a key is kept after its record expired.

A record replaces the stored one when its header's (event, created) is greater or equal
(equal: the later write wins), so a key repeated in one call, or in later calls, resolves in
order. Headers are two 16-digit decimals (µs + ``OFFSET``, see ``parity.online.encoding``);
a 16-digit number may not be exact as a Lua double (above 2**53, after 2176), so two that
are equal as doubles are compared again 8 digits at a time, and a record's event time in ms
is read from its first 13 digits (exact). A key not
stored yet is written by one ``SET NX`` (no read, about a third cheaper for a first load);
otherwise only the stored header is read (GETRANGE 0 31; its bounds are passed as strings
because Redis formats Lua numbers with a printf on every call). After a stored key, the next
keys are read first without the ``SET NX`` (a stream's updates: two calls a key, not three)
until a key is new again.

Expiry (a view with a ttl): a key is reclaimed at ``event + ttl + grace`` (``PXAT``), never
before its record expired. Every time inside the supported range is written:

- an expiry at or before the server's now (e.g. an event in 1950 with a 10-year ttl; Redis
  refuses a ``PXAT`` before 1970) is "already expired": the record is stored all the same,
  so a read says ``expired`` and newest-wins holds, and the key is reclaimed ``grace`` after
  now (at least 1 ms later);
- ``event + ttl`` past the end of the range (2100-01-01, ``parity.clock.MAX_US``) is capped
  there: no read inside the range sees the record expired before that.

A plain SET drops an expiry the key had; ``SET .. PXAT`` needs Redis >= 6.2, and the expiry
is formatted with ``%d`` so it never reaches Redis in exponent form.
"""

from __future__ import annotations

import hashlib

from parity.clock import MAX_US, MIN_US
from parity.online.encoding import OFFSET

END_MS = MAX_US // 1000
"""The end of the supported range in ms: no key's expiry is set later than this + grace."""
MAX_TTL_MS = (MAX_US - MIN_US) // 1000
"""The longest ttl a script is given (the range's span): longer ones change nothing inside
the range, and every sum the script makes stays exact as a double."""

WRITE_SCRIPT = b"""
local call, sub, tonumber, fmt = redis.call, string.sub, tonumber, string.format
local ttl, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = nil
local stored = 0
local updating = false
-- The order of two 16-digit decimals, exactly: 8 digits at a time (each exact as a double).
local function exact_gt(x, y)
  local a, b = tonumber(sub(x, 1, 8)), tonumber(sub(y, 1, 8))
  if a ~= b then return a > b end
  return tonumber(sub(x, 9, 16)) > tonumber(sub(y, 9, 16))
end
-- rec's header is greater than or equal to old's: (event, created). Two numbers that differ
-- as doubles are in the order of the integers they round; only equal doubles (two values
-- above 2^53 a few apart) need the exact comparison.
local function newer(rec, old)
  local a, b = tonumber(sub(rec, 1, 16)), tonumber(sub(old, 1, 16))
  if not b then return true end -- not a header: replace it
  if a ~= b then return a > b end
  local ra, ob = sub(rec, 1, 16), sub(old, 1, 16)
  if ra ~= ob then return exact_gt(ra, ob) end
  local rc, oc = sub(rec, 17, 32), sub(old, 17, 32)
  a, b = tonumber(rc), tonumber(oc)
  if not b then return true end
  if a ~= b then return a > b end
  return rc == oc or exact_gt(rc, oc) -- equal: the later write wins
end
for i = 1, #KEYS do
  local key, rec = KEYS[i], ARGV[i + 2]
  local expire = nil
  if ttl >= 0 then
    -- the event time in ms, rounded up: a key is never reclaimed before its record expired
    local ev_ms = tonumber(sub(rec, 1, 13)) - %(offset_ms)d
    if sub(rec, 14, 16) ~= '000' then ev_ms = ev_ms + 1 end
    local at = ev_ms + ttl
    if at > %(end_ms)d then at = %(end_ms)d end
    at = at + grace
    if not now then
      local t = call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    if at <= now then at = now + math.max(grace, 1) end -- already expired: kept for the grace
    expire = fmt('%%d', at)
  end
  -- A key not stored yet needs no comparison: one SET NX stores it. A stored key needs its
  -- header read first; after one such key the next ones are read first (no SET NX that
  -- fails), until a key turns out to be new again: loads of new keys and updates of
  -- stored ones each take their cheapest path.
  local old = nil
  if updating then
    old = call('GETRANGE', key, '0', '31')
    if #old == 0 then updating = false end -- missing (an empty value reads the same: replaced)
  else
    local done
    if expire then
      done = call('SET', key, rec, 'NX', 'PXAT', expire)
    else
      done = call('SET', key, rec, 'NX')
    end
    if not done then
      updating = true
      old = call('GETRANGE', key, '0', '31')
    end
  end
  if old == nil then
    stored = stored + 1
  elseif #old ~= 32 or newer(rec, old) then
    if expire then
      call('SET', key, rec, 'PXAT', expire)
    else
      call('SET', key, rec)
    end
    stored = stored + 1
  end
end
return stored
""" % {b"offset_ms": OFFSET // 1000, b"end_ms": END_MS}

WRITE_SHA = hashlib.sha1(WRITE_SCRIPT).hexdigest()
"""What ``SCRIPT LOAD`` answers for ``WRITE_SCRIPT``: EVALSHA needs no round trip first."""

NEVER = b"-1"
"""``ttl`` for a view without a ttl."""


CAS_SCRIPT = b"""
local cur = redis.call('GET', KEYS[1])
local seen = ''
if cur then seen = redis.sha1hex(cur) end
if seen ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[3] == '-1' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""
"""Compare-and-set of one key: ``EVALSHA CAS_SHA 1 key sha1(expected or '') new px``; an
empty ``new`` deletes; ``px`` is the key's time to live in ms from now (``-1``: none; else
at least 1, at most ``MAX_TTL_MS`` plus the grace: the caller caps it).
Replies 1 when stored, 0 when the key no longer holds ``expected``."""

CAS_SHA = hashlib.sha1(CAS_SCRIPT).hexdigest()
