"""The Lua script behind every Redis write: newer-wins per key, atomic, in argument order.

Call: ``EVALSHA WRITE_SHA n key_1 .. key_n after record_1 .. record_n``; the reply is how
many records were stored. ``after`` is the ms after a record's event time at which its key
expires (the view's ttl plus the grace period, rounded up), or ``-1`` for never.

A record replaces the stored one when its header's (event, created) is greater or equal
(equal: the later write wins), so a key repeated in one call, or in later calls, resolves in
order. Headers are two 16-digit decimals (µs + 2**52, see ``parity.online.encoding``), exact
as Lua doubles. A key not stored yet is written by one ``SET NX`` (no read, about a third
cheaper for a first load); otherwise only the stored header is read (GETRANGE 0 31; its bounds are passed as
strings because Redis formats Lua numbers with a printf on every call). A plain SET drops
an expiry the key had; ``SET .. PXAT`` needs Redis >= 6.2, and the expiry is formatted
with ``%d`` so it never reaches Redis in exponent form.
"""

from __future__ import annotations

import hashlib

WRITE_SCRIPT = b"""
local call, sub, tonumber, fmt, ceil = redis.call, string.sub, tonumber, string.format, math.ceil
local after = tonumber(ARGV[1])
local stored = 0
for i = 1, #KEYS do
  local key, rec = KEYS[i], ARGV[i + 1]
  local ev = tonumber(sub(rec, 1, 16))
  local expire = nil
  if after >= 0 then
    expire = fmt('%d', ceil((ev - 4503599627370496) / 1000) + after)
  end
  -- A key not stored yet needs no comparison: one SET NX stores it.
  local done
  if expire then
    done = call('SET', key, rec, 'NX', 'PXAT', expire)
  else
    done = call('SET', key, rec, 'NX')
  end
  if done then
    stored = stored + 1
  else
    local old = call('GETRANGE', key, '0', '31')
    local newer = true
    if #old == 32 then
      local old_ev = tonumber(sub(old, 1, 16))
      if ev < old_ev then
        newer = false
      elseif ev == old_ev then
        newer = tonumber(sub(rec, 17, 32)) >= tonumber(sub(old, 17, 32))
      end
    end
    if newer then
      if expire then
        call('SET', key, rec, 'PXAT', expire)
      else
        call('SET', key, rec)
      end
      stored = stored + 1
    end
  end
end
return stored
"""

WRITE_SHA = hashlib.sha1(WRITE_SCRIPT).hexdigest()
"""What ``SCRIPT LOAD`` answers for ``WRITE_SCRIPT``: EVALSHA needs no round trip first."""

NEVER = b"-1"
"""``after`` for a view without a ttl."""


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
empty ``new`` deletes; ``px`` is the key's time to live in ms from now (``-1``: none).
Replies 1 when stored, 0 when the key no longer holds ``expected``."""

CAS_SHA = hashlib.sha1(CAS_SCRIPT).hexdigest()
