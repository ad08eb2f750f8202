#!/usr/bin/perl

# Tests for paranoid_session module: idle and absolute timeouts. A session
# unused for longer than paranoid_idle_timeout is gone; one in constant use
# still ends paranoid_absolute_timeout after it started; use refreshes the
# idle timer; an expired session is never revived, whatever its old token
# is sent with afterwards.

###############################################################################

use warnings;
use strict;

use Test::More;
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

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;

        location /idle {
            paranoid_session on;
            paranoid_cookie isid;
            paranoid_nonce_timeout off;
            paranoid_idle_timeout 1s;
        }

        location /refresh {
            paranoid_session on;
            paranoid_cookie rsid;
            paranoid_idle_timeout 2s;
        }

        location /absolute {
            paranoid_session on;
            paranoid_cookie asid;
            paranoid_nonce_timeout off;
            paranoid_idle_timeout 1h;
            paranoid_absolute_timeout 2s;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ idle refresh absolute /;

memcached_start($t, 11211);
$t->run();

$t->plan(19);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

# Three sessions run side by side so that the waits overlap: "idle" is left
# alone, "refresh" and "absolute" are used every half second for 3 seconds.
# Nonces are off for "idle" and "absolute": their old tokens alone would be
# enough to use them again, were they revived.

my $idle = browser();
my $v = session_vars($idle->get('/idle'));
my ($idle_uid, $idle_token) = ($v->{uid} // '', $idle->cookie('isid') // '');
is(session_vars($idle->get('/idle'))->{status}, 'valid',
	'idle: valid right away');

my $refresh = browser();
my $refresh_uid = session_vars($refresh->get('/refresh'))->{uid} // '';

my $abs = browser();
my $start = time();
my $abs_uid = session_vars($abs->get('/absolute'))->{uid} // '';
my $abs_token = $abs->cookie('asid') // '';

my (@abs, @refresh);
for my $i (1 .. 6) {
	my $wait = $start + 0.5 * $i - time();
	select undef, undef, undef, $wait if $wait > 0;
	my $r = $abs->get('/absolute');
	push @abs, { %{session_vars($r)}, at => time() - $start,
		token => set_cookies($r)->{asid}{value} };
	push @refresh, session_vars($refresh->get('/refresh'));
}

# refreshed every half second, a 2s idle timeout never hits in 3 seconds

is(join(' ', map { $_->{status} // '' } @refresh),
	join(' ', ('valid') x 6), 'refresh: valid throughout');
is(scalar(grep { ($_->{uid} // '') eq $refresh_uid } @refresh), 6,
	'refresh: same uid throughout');

# absolute 2s: valid at first, then expired although in constant use

my ($end) = grep { ($abs[$_]{status} // '') ne 'valid' } 0 .. $#abs;
$end //= @abs;
note('absolute: ' . join ' ', map { sprintf '%.1fs %s', $_->{at},
	$_->{status} // '' } @abs);
is($abs[0]{status}, 'valid', 'absolute: valid after 0.5s');
is($abs[1]{status}, 'valid', 'absolute: valid after 1s');
ok($end >= 2 && $end <= 4, 'absolute: ends after about 2s');
is($abs[$end]{status}, 'expired', 'absolute: status expired');
like($abs[$end]{token} // '', qr/^$TOKEN\z/, 'absolute: a new token');
isnt($abs[$end]{token}, $abs_token, 'absolute: not the old token');
isnt($abs[$end]{uid}, $abs_uid, 'absolute: another uid');
is($abs[$end + 1]{status}, 'valid', 'absolute: the new session works');

# never revived: the old token is unknown for good

$v = session_vars(get_with('/absolute', 'User-Agent: ParanoidBrowser/1.0',
	cookie_header(asid => $abs_token)));
isnt($v->{status}, 'valid', 'absolute: old token not revived');
isnt($v->{uid}, $abs_uid, 'absolute: old uid not revived');

# idle 1s: after 3 seconds unused, gone

my $r = $idle->get('/idle');
$v = session_vars($r);
# 3 s is past the record's tail (as long again as the idle timeout), so
# memcached has dropped it: expired or new (t/paranoid_expiry_status.t
# asks within the tail)
like($v->{status} // '', qr/^(expired|new)\z/, 'idle: expired (or new)');
like(set_cookies($r)->{isid}{value} // '', qr/^$TOKEN\z/, 'idle: new token');
isnt($idle->cookie('isid'), $idle_token, 'idle: not the old token');
isnt($v->{uid}, $idle_uid, 'idle: another uid');

$v = session_vars(get_with('/idle', 'User-Agent: ParanoidBrowser/1.0',
	cookie_header(isid => $idle_token)));
isnt($v->{status}, 'valid', 'idle: old token not revived');
isnt($v->{uid}, $idle_uid, 'idle: old uid not revived');

###############################################################################
