-- wrk script: a cookie jar per wrk thread, like one browser per thread.
--
-- request() sends the jar as a Cookie header; response() applies the
-- response's cookies to it (a cookie with an empty value or Max-Age <= 0 is
-- dropped). The jar starts empty, so the first responses create the
-- thread's session. All connections of a thread share its jar: with
-- -t N -c N every connection has its own session and every request presents
-- the newest nonce.
--
-- wrk gives response() the headers as a table keyed by name, so of several
-- Set-Cookie lines only the last is visible. bench/run.sh therefore has
-- nginx echo all of them, joined by ", ", in X-Bench-Set-Cookie
-- (add_header ... $sent_http_set_cookie); plain Set-Cookie is the fallback.
--
-- With the argument "queue" (wrk ... -s jar.lua URL -- queue) every session
-- has a jar of its own instead, and exactly one request in flight: a
-- response's cookies (those the request sent, echoed by nginx in
-- X-Bench-Cookie, updated by its Set-Cookie) become the Cookie header of the
-- next request the thread sends, on whichever connection is free. With
-- -c 32 there are 32 sessions, each always presenting its newest nonce, and
-- wrk needs no thread per connection. The first request of every
-- connection, with nothing queued, creates a session.
--
-- done() prints one line counting X-Session-Status values over all threads:
--   bench-statuses: new=32 valid=123456

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local base = {}   -- wrk's own headers (-H), copied into every request
jar = {}          -- cookie name -> value
statuses = {}     -- X-Session-Status value -> count (read by done())

local queue_mode = false
local queue, first, last = {}, 1, 0   -- formatted requests, oldest first

function init(args)
   for name, value in pairs(wrk.headers) do
      base[name] = value
   end
   queue_mode = args[1] == "queue"
end

local function format(cookie)
   local headers = {}
   for name, value in pairs(base) do
      headers[name] = value
   end
   if cookie and cookie ~= "" then
      headers["Cookie"] = cookie
   end
   return wrk.format(nil, nil, headers)
end

local function serialize(j)
   local pairs_ = {}
   for name, value in pairs(j) do
      pairs_[#pairs_ + 1] = name .. "=" .. value
   end
   return table.concat(pairs_, "; ")
end

-- The request is formatted again only after the jar changed: the load
-- generator's own cost is not what the benchmark measures.
local cached = nil

function request()
   if queue_mode then
      if first <= last then
         local r = queue[first]
         queue[first] = nil
         first = first + 1
         return r
      end
      return format(nil)
   end
   if not cached then
      cached = format(serialize(jar))
   end
   return cached
end

-- "a=1; Path=/, b=2; Expires=Thu, 01 Jan 1970 00:00:01 GMT" -> two cookies:
-- a comma starts a new cookie only when a name=value follows it.
local function split_cookies(joined)
   local list, cur = {}, nil
   for piece in (joined .. ","):gmatch("([^,]*),") do
      if cur and not piece:match("^%s*[%w!#%$%%&'%*%+%-%.%^_`|~]+=") then
         cur = cur .. "," .. piece
      else
         if cur then list[#list + 1] = cur end
         cur = piece
      end
   end
   if cur then list[#list + 1] = cur end
   return list
end

local function apply(j, joined)
   for _, c in ipairs(split_cookies(joined)) do
      local name, value = c:match("^%s*([^=;%s]+)=([^;]*)")
      if name then
         value = value:gsub("%s+$", "")
         local max_age = tonumber(c:lower():match(";%s*max%-age=(%-?%d+)") or "")
         if value == "" or (max_age and max_age <= 0) then
            j[name] = nil
         else
            j[name] = value
         end
         cached = nil
      end
   end
end

function response(status, headers, body)
   local s = headers["X-Session-Status"] or "none"
   statuses[s] = (statuses[s] or 0) + 1
   local set = headers["X-Bench-Set-Cookie"] or headers["Set-Cookie"]
   if queue_mode then
      local j = {}
      for name, value in (headers["X-Bench-Cookie"] or ""):gmatch("([^=;%s]+)=([^;]*)") do
         j[name] = value
      end
      if set then
         apply(j, set)
      end
      last = last + 1
      queue[last] = format(serialize(j))
   elseif set then
      apply(jar, set)
   end
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      local t = thread:get("statuses")
      if t then
         for k, v in pairs(t) do
            total[k] = (total[k] or 0) + v
         end
      end
   end
   local out = {}
   for k, v in pairs(total) do
      out[#out + 1] = k .. "=" .. v
   end
   table.sort(out)
   io.write("bench-statuses: " .. table.concat(out, " ") .. "\n")
end
