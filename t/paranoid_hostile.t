#!/usr/bin/perl

# Tests for paranoid_session module: more than 10,000 hostile requests to
# protected locations. Random and non-UTF-8 bytes, NULs, a hundred cookies
# named like the module's, 64 KiB cookies (and one too large for nginx
# itself), truncated and invented tokens, real tokens, nonces and secure
# keys with one bit flipped, duplicated names with conflicting values.
# Every answer is an ordinary one (a new session, the violation policy, or
# nginx's own 400), never a 5xx; no forgery is ever taken for the real
# session; no worker dies; and memcached ends up holding exactly the
# sessions the answers created.
#
# The random bytes come from a fixed seed (TEST_PARANOID_SEED changes it),
# printed, so that a failure can be replayed.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Socket::INET;
use Digest::SHA qw/ sha256_hex /;
use MIME::Base64 qw/ encode_base64url decode_base64url /;
use Time::HiRes qw/ time /;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

# The secure key is only checked over HTTPS: that part needs TLS.
my $ssl = $t->has_module('http_ssl') && $t->has_feature('socket_ssl')
	&& grep { -x "$_/openssl" } split /:/, $ENV{PATH} // '';
my $ssl_conf = !$ssl ? '' : <<'EOF';
        listen       127.0.0.1:8443 ssl;
        ssl_certificate     localhost.crt;
        ssl_certificate_key localhost.key;
EOF

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

daemon off;
worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # ten thousand requests need no debug log
    error_log %%TESTDIR%%/error.log notice;

    # a 64 KiB Cookie line fits a buffer; a 200 KiB one does not
    large_client_header_buffers 4 128k;
    keepalive_requests 100000;

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_store_timeout 5s;

    server {
        listen       127.0.0.1:8080;
$ssl_conf
        server_name  localhost;

        add_header X-Status "[\$paranoid_session_status]" always;
        add_header X-Uid "[\$paranoid_session_uid]" always;
        add_header X-Violation "[\$paranoid_session_violation]" always;

        location /deny {
            paranoid_session on;
            paranoid_on_violation deny;
        }

        # forgeries against live sessions: violations are only logged, so
        # one session takes them all; its nonce is not renewed meanwhile
        location /log {
            paranoid_session on;
            paranoid_on_violation log;
            paranoid_nonce_timeout 1h;
        }
    }
}

EOF

$t->write_file('deny', 'deny');
$t->write_file('log', 'log');
make_cert($t, 'localhost') if $ssl;

memcached_start($t, 11211);
$t->run();

$t->plan(22);

###############################################################################

my $SEED = $ENV{TEST_PARANOID_SEED} // 20261124;
diag("random seed $SEED (TEST_PARANOID_SEED)");
srand($SEED);

my $UA = 'ParanoidBrowser/1.0';
my $TOKEN = qr/^[A-Za-z0-9_-]{43}\z/;
my @B64 = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_');

sub random_b64 { join '', @B64[map { int rand 64 } 1 .. $_[0]] }

# Random bytes, none of which ends a header line (CR, LF) or is a NUL.
sub random_bytes {
	my ($n) = @_;
	return pack('C*', map { 1 + int rand 255 } 1 .. $n) =~ tr/\r\n/\x01\x02/r;
}

# $n bytes made of a random 4 KiB block repeated: big values, cheaply.
sub big {
	my ($gen, $n) = @_;
	return substr($gen->(4096) x (1 + int($n / 4096)), 0, $n);
}

# A canonical token nobody was given.
sub invented_token { encode_base64url(join '', map { chr int rand 256 } 1 .. 32) }

# Every copy of $text with one bit of its decoded bytes flipped,
# re-encoded canonically.
my %flips;
sub byte_flips {
	my ($text) = @_;
	my $bytes = decode_base64url($text);
	return @{$flips{$text}} if $flips{$text};
	return @{$flips{$text} = [ map {
		my $copy = $bytes;
		vec($copy, $_, 1) ^= 1;
		encode_base64url($copy);
	} 0 .. 8 * length($bytes) - 1 ]};
}

# Every copy of $text with one bit (0..6) of one character flipped, except
# those that would end the header line or hold a NUL.
sub text_flips {
	my ($text) = @_;
	my @out;
	for my $i (0 .. length($text) - 1) {
		for my $bit (0 .. 6) {
			my $c = chr(ord(substr $text, $i, 1) ^ (1 << $bit));
			next if $c =~ /[\r\n\0]/;
			push @out, substr($text, 0, $i) . $c . substr($text, $i + 1);
		}
	}
	return @out;
}

# Pipelined HTTP/1.1 over keep-alive connections.

sub request_text {
	my ($path, @cookie_lines) = @_;
	return "GET $path HTTP/1.1\r\nHost: localhost\r\nUser-Agent: $UA\r\n"
		. join('', map { "Cookie: $_\r\n" } @cookie_lines) . "\r\n";
}

sub connect_to {
	my ($tls) = @_;
	my $s = IO::Socket::INET->new(Proto => 'tcp',
		PeerAddr => '127.0.0.1:' . port($tls ? 8443 : 8080))
		or die "Can't connect: $!\n";
	if ($tls) {
		require IO::Socket::SSL;
		IO::Socket::SSL->start_SSL($s, SSL_verify_mode =>
			IO::Socket::SSL::SSL_VERIFY_NONE())
			or die 'TLS: ' . IO::Socket::SSL::errstr() . "\n";
	}
	return $s;
}

# Writes as much of $data as the peer takes (it may close early).
sub write_all {
	my ($s, $data) = @_;
	local $SIG{PIPE} = 'IGNORE';
	while (length $data) {
		my $n = syswrite($s, $data, 65536);
		return 0 unless $n;
		substr($data, 0, $n, '');
	}
	return 1;
}

# One response from the socket (with what is left in $$buf); undef if the
# connection ends or stalls first.
sub read_response {
	my ($s, $buf) = @_;
	my $r;
	eval {
		local $SIG{ALRM} = sub { die "timeout\n" };
		alarm 10;
		my $fill = sub { sysread($s, $$buf, 65536, length $$buf) };
		my $head_len;
		until (defined($head_len = index($$buf, "\r\n\r\n"))
			&& $head_len >= 0)
		{
			$fill->() or die "closed\n";
		}
		$head_len += 4;
		my ($len) = substr($$buf, 0, $head_len) =~ /^Content-Length: (\d+)/mi;
		die "no length\n" unless defined $len;
		while (length($$buf) < $head_len + $len) { $fill->() or die "closed\n" }
		$r = substr($$buf, 0, $head_len + $len, '');
		alarm 0;
	};
	alarm 0;
	return $r;
}

# Sends the requests in batches over keep-alive connections and returns
# the responses in order. After "Connection: close" the rest is sent again
# on a new connection; a request that twice gets no answer at all gets
# undef.
sub pipeline {
	my ($reqs, %o) = @_;
	my $batch = $o{batch} // 64;
	my ($i, $s, $buf, @out, %lost) = (0);
	while ($i < @$reqs) {
		$s //= connect_to($o{ssl});
		$buf = '';
		my $end = $i + $batch > @$reqs ? scalar @$reqs : $i + $batch;
		write_all($s, join '', @$reqs[$i .. $end - 1]);
		my $closed = 0;
		while ($i < $end) {
			my $r = read_response($s, \$buf);
			unless (defined $r) {
				$out[$i++] = undef if $lost{$i}++;
				$closed = 1;
				last;
			}
			$out[$i++] = $r;
			if ($r =~ /^Connection: close\r$/mi) {
				$closed = 1;
				last;
			}
		}
		if ($closed) {
			close $s;
			$s = undef;
		}
	}
	close $s if $s;
	return @out;
}

# Which of the keys memcached holds: { key => 1 or 0 }, by plain meta gets
# ("HD" or "EN"), pipelined on one connection.
sub memcached_present {
	my (@keys) = @_;
	my %have;
	my $s = IO::Socket::INET->new('127.0.0.1:' . port(11211)) or return ();
	while (my @part = splice @keys, 0, 1000) {
		write_all($s, join '', map { "mg $_\r\n" } @part);
		my $buf = '';
		eval {
			local $SIG{ALRM} = sub { die "timeout\n" };
			alarm 10;
			while (($buf =~ tr/\n//) < @part) {
				sysread($s, $buf, 65536, length $buf) or last;
			}
			alarm 0;
		};
		alarm 0;
		my @replies = split /\r\n/, $buf;
		$have{$part[$_]} = ($replies[$_] // '') eq 'HD' ? 1 : 0 for 0 .. $#part;
	}
	return %have;
}

###############################################################################

# The real sessions the forgeries aim at.

my %real;      # token => { nonce, key, uid }
my %real_uid;
my (@issued, %gone);    # every token handed out; those destroyed since

sub real_session {
	my ($tls) = @_;
	my $b = browser(ua => $UA, ssl => $tls);
	my $v = session_vars($b->get('/log'));
	my %s = (token => $b->cookie('sessionid') // '',
		nonce => $b->cookie('sessionnonce') // '',
		key => $b->cookie('__Secure-sessionid_https'),
		uid => $v->{uid} // '',
		status => $v->{status} // '', browser => $b);
	$s{token_re} = qr/sessionid="?\Q$s{token}\E"?(?:;|\r)/;
	$real{$s{token}} = \%s;
	$real_uid{$s{uid}} = 1;
	push @issued, $s{token};
	return \%s;
}

my $rh = real_session(0);
my $rs = $ssl ? real_session(1) : undef;
# The cases: { cat, path, text, expect, ssl, batch, reason }. expect is
# new (a new session, 200), violation (200 at /log, 403 at /deny, with
# reason), nginx400 (nginx's own 400), or any (not a 5xx).

my (@cases, %order);

sub add_case {
	my ($cat, $path, $expect, $cookie_lines, %o) = @_;
	$order{$cat} //= scalar keys %order;
	push @cases, { cat => $cat, path => $path, expect => $expect,
		text => request_text($path, @$cookie_lines), %o };
}

# A. random bytes as cookie values, and as a whole Cookie line

for (1 .. 3000) {
	add_case('random token value', '/deny', 'new',
		[ 'sessionid=' . random_bytes(1 + int rand 300) ]);
}
for (1 .. 1000) {
	add_case('random Cookie line', '/deny', 'new',
		[ random_bytes(1 + int rand 600) ]);
}
for (1 .. 500) {
	add_case('random token, nonce, key', '/deny', 'new', [ join '; ',
		map { "$_=" . random_bytes(1 + int rand 64) }
		qw/ sessionid sessionnonce __Secure-sessionid_https / ]);
}

# B. bytes that are not UTF-8: overlong forms, lone continuation bytes,
# surrogates, 0xFE/0xFF, truncated sequences; in values and in names

my @not_utf8 = ("\xC0\x80", "\xC1\xBF", "\x80", "\xBF\xBF", "\xED\xA0\x80",
	"\xF8\x88\x80\x80\x80", "\xFE", "\xFF\xFE", "\xE2\x82", "\xF0\x9F\x98",
	"\xF4\x90\x80\x80");
for (1 .. 600) {
	my $junk = join '', map { $not_utf8[int rand @not_utf8] } 1 .. 1 + int rand 20;
	my $token = random_b64(20) . $junk . random_b64(20);
	add_case('non-UTF-8', '/deny', 'new', [ $_ % 3 == 0
		? "sessionid=$token; sessionnonce=$junk"
		: $_ % 3 == 1 ? "sessionid$junk=" . invented_token()
		: "$junk=$junk; sessionid=$junk" ]);
}

# C. NUL bytes: nginx refuses the header line itself

for (1 .. 20) {
	my $at = int rand 43;
	my $token = random_b64(43);
	substr($token, $at, 1, "\0");
	add_case('NUL', '/deny', 'nginx400',
		[ $_ % 2 ? "sessionid=$token" : "sessionid=\0" ], batch => 1);
}

# D. a hundred cookies named like ours, in one line or in a hundred lines

my @names = (qw/ sessionid sessionnonce __Secure-sessionid_https
	sessionid_https __secure-sessionid_https SESSIONID
	SessionId sessionid_ sessionidx xsessionid session sessionnonce_ /,
	'sessionid ', ' sessionid', "sessionid\t");
for my $n (1 .. 300) {
	my @pairs = map {
		my $name = $n % 3 == 0 ? $names[int rand @names] : 'sessionid';
		"$name=" . ($_ % 2 ? invented_token() : random_b64(22));
	} 1 .. 100;
	add_case('100 cookies named like ours', '/deny', 'new',
		$n % 2 ? [ join '; ', @pairs ] : \@pairs, batch => 16);
}

# E. 64 KiB of cookies: one value, many small ones, several lines

for my $n (1 .. 40) {
	my $lines = $n % 4 == 0 ? [ 'sessionid=' . big(\&random_b64, 65536) ]
		: $n % 4 == 1 ? [ join '; ', map { "c$_=" . random_b64(8) } 1 .. 5000 ]
		: $n % 4 == 2 ? [ map { "sessionid=" . big(\&random_b64, 60000) } 1 .. 3 ]
		: [ 'x=' . big(\&random_bytes, 65536) . '; sessionid='
			. invented_token() ];
	add_case('64 KiB cookies', '/deny', 'new', $lines, batch => 4);
}

# F. beyond nginx's limit (a 200 KiB line): nginx answers 400 itself

for (1 .. 4) {
	add_case('200 KiB Cookie line', '/deny', 'nginx400',
		[ 'sessionid=' . big(\&random_b64, 200 * 1024) ], batch => 1);
}

# G. truncated, invented and mangled tokens

for my $len (0 .. 42) {
	add_case('truncated and forged tokens', '/deny', 'new',
		[ 'sessionid=' . substr($rh->{token}, 0, $len) ]);
	add_case('truncated and forged tokens', '/deny', 'new',
		[ 'sessionid=' . substr($rh->{token}, 43 - $len) ]);
}
for (1 .. 2800) {
	add_case('truncated and forged tokens', '/deny', 'new',
		[ 'sessionid=' . invented_token() . '; sessionnonce=' . random_b64(22) ]);
}
for (1 .. 400) {
	my $tok = $rh->{token};
	my @forms = ($tok . '=', $tok . 'A', "$tok$tok", $tok =~ tr/-_/+\//r,
		'"' . invented_token(), invented_token() . '"', 'A' x 43,
		random_b64(42) . '=', random_b64(44), random_b64(int rand 256),
		lc $tok, uc $tok, scalar reverse($tok));
	# none of them may be the real token: at /deny it would end the session
	@forms = grep { $_ ne $tok } @forms;
	add_case('truncated and forged tokens', '/deny', 'new',
		[ 'sessionid=' . $forms[$_ % @forms] ]);
}

# H. the real token with one bit flipped, the real nonce with it; and the
# same 32 bytes with non-canonical low bits in the last character

for my $tok (byte_flips($rh->{token}), text_flips($rh->{token})) {
	add_case('real token, one bit flipped', '/log', 'new',
		[ "sessionid=$tok; sessionnonce=$rh->{nonce}" ]);
}
my ($last) = grep { $B64[$_] eq substr($rh->{token}, -1) } 0 .. 63;
for my $low (1 .. 3) {
	my $tok = substr($rh->{token}, 0, 42) . $B64[($last & ~3) | $low];
	next if $tok eq $rh->{token};
	add_case('real token, one bit flipped', '/log', 'new',
		[ "sessionid=$tok; sessionnonce=$rh->{nonce}" ]);
}

# I. the real token with its nonce's bits flipped: a violation, logged

for my $nonce (byte_flips($rh->{nonce}), text_flips($rh->{nonce})) {
	add_case('real token, forged nonce', '/log', 'violation',
		[ "sessionid=$rh->{token}; sessionnonce=$nonce" ], reason => 'nonce');
}

# J. duplicated names with conflicting values, in one line or in several

for my $n (1 .. 300) {
	my ($tok, $nonce) = ($rh->{token}, $rh->{nonce});
	my $ftok = $n % 2 ? invented_token() : (byte_flips($tok))[$n % 256];
	my $fnonce = (byte_flips($nonce))[$n % 128];
	my @variants = (
		[ "sessionid=$ftok; sessionid=$tok; sessionnonce=$nonce" ],
		[ "sessionid=$tok; sessionid=$ftok; sessionnonce=$nonce" ],
		[ "sessionid=$tok; sessionnonce=$fnonce; sessionnonce=$nonce" ],
		[ "sessionid=$tok; sessionnonce=$nonce; sessionnonce=$fnonce" ],
		[ "sessionid=$ftok", "sessionid=$tok; sessionnonce=$nonce" ],
		[ "sessionid=$tok; sessionnonce=$fnonce", "sessionnonce=$nonce" ],
		[ "sessionid=$ftok; sessionid=" . invented_token()
			. "; sessionnonce=$nonce" ],
		[ "sessionid=$tok; sessionnonce=$fnonce; sessionnonce="
			. random_b64(22) ],
		[ "sessionid=\"$tok\"; sessionnonce=$fnonce" ],
	);
	add_case('duplicated names, conflicting values', '/log', 'any',
		$variants[$n % @variants]);
}

# K. the secure key forged, over HTTPS (real token and nonce)

if ($ssl) {
	my ($tok, $nonce, $key) = @$rs{qw/ token nonce key /};
	my @keys = (byte_flips($key), text_flips($key),
		map { random_b64(22) } 1 .. 100);
	for my $k (@keys) {
		add_case('forged secure key (https)', '/log', 'violation',
			[ "sessionid=$tok; sessionnonce=$nonce; "
				. "__Secure-sessionid_https=$k" ],
			ssl => 1, reason => 'secure_key');
	}
	for my $k ('', 'A' x 22, $key . 'A', substr($key, 1), $nonce, $tok) {
		add_case('forged secure key (https)', '/log', 'violation',
			[ "sessionid=$tok; sessionnonce=$nonce; "
				. "__Secure-sessionid_https=$k" ],
			ssl => 1, reason => 'secure_key');
	}
	add_case('forged secure key (https)', '/log', 'violation',
		[ "sessionid=$tok; sessionnonce=$nonce" ], ssl => 1,
		reason => 'secure_key');
}

# L. odd syntax

my @odd = ('', ';', ';;;;;;', '=', '==', 'sessionid', 'sessionid=',
	'sessionid==', '=sessionid', 'sessionid=;sessionid=', ' ; sessionid = ; ',
	"\tsessionid\t=\t", 'sessionid="', 'sessionid=""', 'sessionid="""',
	'sessionid=' . ('"' x 45), '"sessionid"=' . invented_token(),
	'sessionid=' . invented_token() . ' ' . invented_token(),
	'sessionid=' . ('%41' x 43), 'sessionid=' . ('\\' x 43),
	'sessionid=' . (';' x 300), ('a=b;' x 500), "sessionid=\x7f" x 3,
	'sessionid=' . (' ' x 300) . invented_token());
for my $n (1 .. 200) {
	add_case('odd syntax', '/deny', 'new', [ $odd[$n % @odd] ]);
}

###############################################################################

# Runs the cases, keeping each category's order; ssl ones and odd batch
# sizes go in runs of their own.

my $started = time;
my @runs;
for my $c (@cases) {
	my $key = join ':', $c->{ssl} ? 1 : 0, $c->{batch} // 64;
	push @runs, { key => $key, cases => [] }
		if !@runs || $runs[-1]{key} ne $key;
	push @{$runs[-1]{cases}}, $c;
}
for my $run (@runs) {
	my @c = @{$run->{cases}};
	my @r = pipeline([ map { $_->{text} } @c ], ssl => $c[0]{ssl},
		batch => $c[0]{batch});
	$c[$_]{response} = $r[$_] for 0 .. $#c;
}

# M. deny: a forged nonce ends a fresh session with 403; its owner then
# gets a new session

my @fresh = pipeline([ map { request_text('/deny') } 1 .. 32 ]);
my (@deny_cases, $fresh_ok);
for my $r (@fresh) {
	my $c = set_cookies($r // '');
	my ($tok, $nonce) = map { $c->{$_}{value} // '' } qw/ sessionid sessionnonce /;
	my $uid = session_vars($r // '')->{uid} // '';
	$fresh_ok++ if ($tok =~ $TOKEN) && length $nonce;
	push @issued, $tok if $tok =~ $TOKEN;
	my $forged = (byte_flips($nonce))[int rand 128] // 'x';
	push @deny_cases,
		{ cat => 'deny: forged nonce', path => '/deny', expect => 'violation',
			reason => 'nonce', owner => $uid, ends => $tok, text => request_text('/deny',
			"sessionid=$tok; sessionnonce=$forged") },
		{ cat => 'deny: owner afterwards', path => '/deny', expect => 'new',
			owner => $uid, text => request_text('/deny',
			"sessionid=$tok; sessionnonce=$nonce") };
}
my @dr = pipeline([ map { $_->{text} } @deny_cases ]);
$deny_cases[$_]{response} = $dr[$_] for 0 .. $#deny_cases;
$order{$_->{cat}} //= scalar keys %order for @deny_cases;
push @cases, @deny_cases;

my $elapsed = time - $started;

###############################################################################

# A raw response's status code, the module's variables as the add_header
# lines show them, and the token cookie it sets (the first one).
sub answer {
	my ($r) = @_;
	my $v = session_vars($r);
	return { %$v, code => $v->{code} // 0, token => scalar session_cookie($r) };
}

# Judges one answer: '' if it is as expected, else what is wrong.

my %codes;

sub judge {
	my ($c) = @_;
	my $r = $c->{response};
	return 'no answer' unless defined $r;
	my $v = answer($r);
	my ($code, $status, $uid) = ($v->{code}, $v->{status} // '',
		$v->{uid} // '');
	$codes{$code}++;
	my $tok = $v->{token} // '';
	push @issued, $tok if $tok =~ $TOKEN;
	$gone{$c->{ends}} = 1
		if $c->{ends} && $c->{path} eq '/deny' && $status eq 'violation';

	return "answered $code" if $code < 200 || $code >= 500;

	# the request carries a real session's every secret
	my ($real) = grep { index($c->{text}, $_) >= 0
		&& $c->{text} =~ $real{$_}{token_re} } keys %real;
	my $genuine = $real
		&& index($c->{text}, "sessionnonce=$real{$real}{nonce}") >= 0
		&& (!$c->{ssl}
		|| index($c->{text},
			"__Secure-sessionid_https=$real{$real}{key}") >= 0);
	return "forgery taken for the real session $uid"
		if !$genuine && $real_uid{$uid} && $status =~ /^(valid|rotated)$/;
	return "real uid $uid without the real token"
		if !$real && $real_uid{$uid};
	return "owner's uid after deny" if $c->{cat} eq 'deny: owner afterwards'
		&& $uid eq $c->{owner};

	my $e = $c->{expect};
	if ($e eq 'new') {
		return "code $code, status '$status'"
			unless $code == 200 && $status eq 'new';
		return "no new token" unless $tok =~ $TOKEN;
		return "uid '$uid'" unless $uid =~ /^[0-9a-f]{32}\z/;
	} elsif ($e eq 'violation') {
		my $want = $c->{path} eq '/deny' ? 403 : 200;
		return "code $code, status '$status', violation '"
			. ($v->{violation} // '') . "'"
			unless $code == $want && $status eq 'violation'
			&& ($v->{violation} // '') eq $c->{reason};
	} elsif ($e eq 'nginx400') {
		return "code $code, status '$status'" unless $code == 400;
	}
	return '';
}

my (%count, %bad, %example);
for my $c (@cases) {
	my $why = judge($c);
	$count{$c->{cat}}++;
	next unless length $why;
	$bad{$c->{cat}}++;
	$example{$c->{cat}} //= $why . ' <- ' . substr($c->{text} =~ s/[^\x20-\x7e]/?/gr,
		0, 300);
}

my $total = @cases;
note(sprintf "%d hostile requests in %.1f s (%s)", $total, $elapsed,
	join ', ', map { "$_: $codes{$_}" } sort keys %codes);
cmp_ok($total, '>=', 10000, "$total hostile requests");
for my $cat (sort { $order{$a} <=> $order{$b} } keys %order) {
	is($bad{$cat} // 0, 0, "$cat: $count{$cat} requests as expected")
		or diag("first: $example{$cat}");
}
is($fresh_ok, 32, 'deny: 32 fresh sessions');

# SKIP for the https category is a pass with nothing to count: keep the
# plan fixed
pass('forged secure key (https): skipped, no TLS') unless $ssl;

# the real sessions survived every forgery

my @still = map {
	my $r = $_->{browser}->get('/log');
	my $v = session_vars($r);
	# a new session here is a failure, but still a record to account for
	my $tok = set_cookies($r)->{sessionid}{value} // '';
	push @issued, $tok if $tok =~ $TOKEN;
	($v->{status} // '') eq 'valid' && ($v->{uid} // '') eq $_->{uid} ? 1 : ();
} grep { defined } $rh, $rs;
is(scalar @still, $ssl ? 2 : 1, 'real sessions still valid after the forgeries');

# memcached holds exactly the sessions created: one record per token
# handed out, less those a deny violation destroyed, each under its
# token's key

my $expected = @issued - keys %gone;
is(memcached_stats(11211)->{curr_items}, $expected,
	"memcached: $expected records (" . scalar(@issued) . ' tokens issued, '
	. scalar(keys %gone) . ' destroyed)');
my %key_of = map { $_ => 'ps:' . sha256_hex(decode_base64url($_)) } @issued;
my %present = memcached_present(values %key_of);
my @wrong = grep { ($present{$key_of{$_}} // 0) != ($gone{$_} ? 0 : 1) }
	@issued;
is(scalar @wrong, 0, 'memcached: a record for every live token, none for '
	. 'a destroyed one');

# no worker died, nothing alarming was logged (read before nginx stops,
# whose own shutdown is logged as workers exiting)

my $log = $t->read_file('error.log');
my @bad = $log =~ /^.*(?:signal|exited|\[alert\]|panic).*$/mgi;
is(join("\n", @bad[0 .. ($#bad > 4 ? 4 : $#bad)]), '',
	'error log: no signal, exited, alert or panic');

###############################################################################
