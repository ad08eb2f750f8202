#!/usr/bin/perl

# Tests for paranoid_session module: internal redirects (index, error_page)
# do not run the checks twice. One client request costs one memcached
# lookup (or one write for a new session), each cookie is set once, and "/"
# through index behaves as "/index.html".

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

        # a new nonce on every request: each response sets one
        paranoid_nonce_timeout 0;

        location / {
            paranoid_session on;
            index index.html;
        }

        location /missing/ {
            paranoid_session on;
            error_page 404 = /fallback.html;
        }

        location /unprotected/ {
            error_page 404 = /fallback.html;
        }
    }
}

EOF

$t->write_file('index.html', 'index');
$t->write_file('fallback.html', 'fallback');

memcached_start($t, 11211);
$t->run();

$t->plan(34);

###############################################################################

# Runs $code; returns its result and what memcached did meanwhile:
# lookups (gets and touches) and writes.
sub counted {
	my ($code) = @_;
	my $before = memcached_stats(11211);
	my $r = $code->();
	my $after = memcached_stats(11211);
	my %d = map { $_ => ($after->{$_} // 0) - ($before->{$_} // 0) }
		qw/ cmd_get cmd_touch cmd_set /;
	return ($r, $d{cmd_get} + $d{cmd_touch}, $d{cmd_set});
}

# Every cookie of a response set once: "name=n ..." for a summary.
sub cookie_names {
	my ($r) = @_;
	my %n;
	$n{(split /=/, $_, 2)[0]}++ for set_cookie_lines($r);
	return join ' ', map { "$_=$n{$_}" } sort keys %n;
}

# a new session through index

my $b = browser();
my ($r, $lookups, $writes) = counted(sub { $b->get('/') });
like($r, qr/^HTTP\/1\.1 200 .*index$/s, 'index new: served');
is(session_vars($r)->{status}, 'new', 'index new: status');
is(cookie_names($r), 'sessionid=1 sessionnonce=1', 'index new: cookies once');
is($lookups, 0, 'index new: no lookup without a token');
is($writes, 1, 'index new: one write');
my $uid = session_vars($r)->{uid} // '';

# the session through index: one lookup, nonce renewed once

($r, $lookups, $writes) = counted(sub { $b->get('/') });
is(session_vars($r)->{status}, 'valid', 'index: valid');
is(session_vars($r)->{uid}, $uid, 'index: same uid');
is(cookie_names($r), 'sessionnonce=1', 'index: nonce renewed once');
is($lookups, 1, 'index: one lookup');
is($writes, 1, 'index: one write');

# the same through /index.html directly

($r, $lookups, $writes) = counted(sub { $b->get('/index.html') });
is(session_vars($r)->{status}, 'valid', 'direct: valid');
is(cookie_names($r), 'sessionnonce=1', 'direct: same cookies as via index');
is($lookups, 1, 'direct: one lookup');
is($writes, 1, 'direct: one write');

# again through index: still valid with the nonce it got last time

($r, $lookups) = counted(sub { $b->get('/') });
is(session_vars($r)->{status}, 'valid', 'index again: valid');
is($lookups, 1, 'index again: one lookup');

# error_page to a protected location

($r, $lookups, $writes) = counted(sub { $b->get('/missing/page') });
like($r, qr/^HTTP\/1\.1 200 .*fallback$/s, 'error_page: fallback served');
is(session_vars($r)->{status}, 'valid', 'error_page: valid');
is(session_vars($r)->{uid}, $uid, 'error_page: same uid');
is(cookie_names($r), 'sessionnonce=1', 'error_page: nonce renewed once');
is($lookups, 1, 'error_page: one lookup');
is($writes, 1, 'error_page: one write');

# error_page from an unprotected location into a protected one: checked
# there, once

($r, $lookups) = counted(sub { $b->get('/unprotected/page') });
like($r, qr/^HTTP\/1\.1 200 .*fallback$/s, 'into protected: served');
is(session_vars($r)->{status}, 'valid', 'into protected: valid');
is(cookie_names($r), 'sessionnonce=1', 'into protected: nonce once');
is($lookups, 1, 'into protected: one lookup');

# a new session through error_page

my $other = browser();
($r, $lookups, $writes) = counted(sub { $other->get('/missing/page') });
is(session_vars($r)->{status}, 'new', 'error_page new: status');
is(cookie_names($r), 'sessionid=1 sessionnonce=1',
	'error_page new: cookies once');
is($lookups, 0, 'error_page new: no lookup');
is($writes, 1, 'error_page new: one write');

# a violation through index: one new token, once

my $thief = $b->clone(ua => 'Thief/1.0');
($r, $lookups) = counted(sub { $thief->get('/') });
is(session_vars($r)->{status}, 'violation', 'index violation: status');
is(set_cookie_count($r, 'sessionid'), 1, 'index violation: one new token');
is(set_cookie_count($r, 'sessionnonce'), 1,
	'index violation: one new nonce');
is($lookups, 1, 'index violation: one lookup');

###############################################################################
