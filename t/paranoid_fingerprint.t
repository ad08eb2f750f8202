#!/usr/bin/perl

# Tests for paranoid_session module: the fingerprint. A request carrying a
# session's cookies from another User-Agent or another client address is a
# violation "fingerprint", handled per paranoid_on_violation: clear (new
# anonymous session, old one gone), deny (403, cookies expired, old one
# gone) or log (nothing changes). paranoid_fingerprint_ip_prefix compares
# addresses by prefix; paranoid_fingerprint chooses the values.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http realip/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location /clear {
            paranoid_session on;
        }

        location /deny {
            paranoid_session on;
            paranoid_on_violation deny;
        }

        location /log {
            paranoid_session on;
            paranoid_on_violation log;
        }

        location /prefix {
            paranoid_session on;
            paranoid_fingerprint_ip_prefix 24 64;
        }

        location /device {
            paranoid_session on;
            paranoid_fingerprint $http_x_device;
        }

        location /nofp {
            paranoid_session on;
            paranoid_fingerprint off;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ clear deny log prefix device nofp /;

memcached_start($t, 11211);
$t->run();

$t->plan(49);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

# A session started at $uri by a client with these settings; returns the
# browser and the session's uid. Each is checked to be valid once more.
my @not_valid;
sub owner {
	my ($uri, %opts) = @_;
	my $b = browser(ua => 'Owner/1.0', ip => '10.0.0.1', %opts);
	$b->get($uri);
	my $v = session_vars($b->get($uri));
	push @not_valid, $uri unless ($v->{status} // '') eq 'valid'
		&& ($v->{uid} // '') =~ /^[0-9a-f]{32}\z/;
	return ($b, $v->{uid} // '');
}

# clear: another User-Agent

my ($b, $uid) = owner('/clear');
my $thief = $b->clone(ua => 'Thief/1.0');
my $r = $thief->get('/clear');
my $v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*clear$/s, 'clear ua: request continues');
is($v->{status}, 'violation', 'clear ua: status');
is($v->{violation}, 'fingerprint', 'clear ua: reason');
like($thief->cookie('sessionid') // '', qr/^$TOKEN\z/, 'clear ua: token set');
isnt($thief->cookie('sessionid'), $b->cookie('sessionid'),
	'clear ua: a new token');
isnt($v->{uid}, $uid, 'clear ua: not the old uid');

$v = session_vars($thief->get('/clear'));
is($v->{status}, 'valid', 'clear ua: the fresh session works for the thief');
isnt($v->{uid}, $uid, 'clear ua: the fresh session is another one');

$v = session_vars($b->get('/clear'));
is($v->{status}, 'new', 'clear ua: old session gone for its owner too');
isnt($v->{uid}, $uid, 'clear ua: owner gets another uid');

# clear: another address

($b, $uid) = owner('/clear');
$v = session_vars($b->clone(ip => '10.0.0.2')->get('/clear'));
is($v->{status}, 'violation', 'clear address: status');
is($v->{violation}, 'fingerprint', 'clear address: reason');
isnt(session_vars($b->get('/clear'))->{status}, 'valid',
	'clear address: old session gone');

# no User-Agent at all is a change too

($b, $uid) = owner('/clear');
$v = session_vars($b->clone(ua => undef)->get('/clear'));
is($v->{violation}, 'fingerprint', 'clear no ua: reason');

# deny

($b, $uid) = owner('/deny');
$r = $b->clone(ua => 'Thief/1.0')->get('/deny');
$v = session_vars($r);
like($r, qr/^HTTP\/1\.1 403 /, 'deny: 403');
is($v->{status}, 'violation', 'deny: status');
is($v->{violation}, 'fingerprint', 'deny: reason');
like($r, qr/^Set-Cookie: sessionid=[^;\r]*; Path=\/; Max-Age=0; (?x)
	Expires=Thu,\ 01\ Jan\ 1970\ 00:00:01\ GMT;\ HttpOnly;\ SameSite=Lax\r$/m,
	'deny: token cookie expired');
like($r, qr/^Set-Cookie: sessionnonce=[^;\r]*; Path=\/; Max-Age=0; (?x)
	Expires=Thu,\ 01\ Jan\ 1970\ 00:00:01\ GMT;\ HttpOnly;\ SameSite=Lax\r$/m,
	'deny: nonce cookie expired');
unlike($r, qr/^Set-Cookie: sessionid=$TOKEN;/m, 'deny: no new token');
unlike($r, qr/deny$/, 'deny: content not served');

$v = session_vars($b->get('/deny'));
is($v->{status}, 'new', 'deny: old session gone for its owner too');
isnt($v->{uid}, $uid, 'deny: owner gets another uid');

($b, $uid) = owner('/deny');
like($b->clone(ip => '10.0.0.2')->get('/deny'), qr/^HTTP\/1\.1 403 /,
	'deny address: 403');

# log: only logged, nothing changes

($b, $uid) = owner('/log');
$r = $b->clone(ua => 'Thief/1.0')->get('/log');
$v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*log$/s, 'log: request continues');
is($v->{status}, 'violation', 'log: status');
is($v->{violation}, 'fingerprint', 'log: reason');
is(set_cookie_count($r, 'sessionid'), 0, 'log: no token set');
unlike($r, qr/^Set-Cookie: [^\r]*Max-Age=0/m, 'log: nothing expired');

$v = session_vars($b->get('/log'));
is($v->{status}, 'valid', 'log: session still valid for its owner');
is($v->{uid}, $uid, 'log: same uid');
is($v->{violation}, '', 'log: owner sees no violation');

$v = session_vars($b->clone(ip => '10.0.0.2')->get('/log'));
is($v->{violation}, 'fingerprint', 'log address: reason');
is(session_vars($b->get('/log'))->{status}, 'valid',
	'log address: still valid for its owner');

# ip prefix 24 64

($b, $uid) = owner('/prefix');
$v = session_vars($b->clone(ip => '10.0.0.99')->get('/prefix'));
is($v->{status}, 'valid', 'prefix v4: same /24 is the same client');
is($v->{uid}, $uid, 'prefix v4: same uid');
$v = session_vars($b->clone(ip => '10.0.1.1')->get('/prefix'));
is($v->{violation}, 'fingerprint', 'prefix v4: another /24 is not');

($b, $uid) = owner('/prefix', ip => '2001:db8::1');
$v = session_vars($b->clone(ip => '2001:db8::ffff:1')->get('/prefix'));
is($v->{status}, 'valid', 'prefix v6: same /64 is the same client');
is($v->{uid}, $uid, 'prefix v6: same uid');
$v = session_vars($b->clone(ip => '2001:db8:0:1::1')->get('/prefix'));
is($v->{violation}, 'fingerprint', 'prefix v6: another /64 is not');

# without the prefix the whole address counts

($b, $uid) = owner('/clear');
$v = session_vars($b->clone(ip => '10.0.0.99')->get('/clear'));
is($v->{violation}, 'fingerprint', 'prefix 32: another address is not');

# the prefix applies to addresses, not to the User-Agent

($b, $uid) = owner('/prefix');
$v = session_vars($b->clone(ua => 'Owner/1.1')->get('/prefix'));
is($v->{violation}, 'fingerprint', 'prefix: another ua still differs');

# custom fingerprint values

($b, $uid) = owner('/device', headers => ['X-Device: phone-1']);
$v = session_vars($b->clone(ua => 'Other/2.0', ip => '10.9.9.9')
	->get('/device'));
is($v->{status}, 'valid', 'custom: ua and address not part of it');
is($v->{uid}, $uid, 'custom: same uid');
$v = session_vars($b->clone(headers => ['X-Device: phone-2'])
	->get('/device'));
is($v->{violation}, 'fingerprint', 'custom: the value changed');

# fingerprint off

($b, $uid) = owner('/nofp');
$v = session_vars($b->clone(ua => 'Other/2.0', ip => '10.9.9.9')
	->get('/nofp'));
is($v->{status}, 'valid', 'off: anything goes');
is($v->{uid}, $uid, 'off: same uid');

# the sessions the tests above stole were all valid before

is("@not_valid", '', 'every owner had a valid session');

$t->stop();

# one warn line for each of the 12 violations above

my @warn = grep { /\[warn\]/ && /fingerprint/ }
	split /\n/, $t->read_file('error.log');
is(scalar @warn, 12, 'one warn line per violation');

###############################################################################
