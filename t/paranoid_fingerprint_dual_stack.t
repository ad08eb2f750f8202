#!/usr/bin/perl

# Tests for paranoid_session module: the fingerprint behind a dual-stack
# listener. There IPv4 clients show up as IPv4-mapped IPv6 addresses
# (::ffff:a.b.c.d); they are compared by the IPv4 prefix of
# paranoid_fingerprint_ip_prefix, as the plain IPv4 address would be, not by
# the IPv6 one (which would put every IPv4 client in one network). The
# realip module gives $remote_addr such addresses without a wildcard
# listener.

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
        add_header X-Addr "[$remote_addr]" always;

        location / {
            paranoid_session on;
            paranoid_fingerprint $remote_addr;
            paranoid_fingerprint_ip_prefix 24 64;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');

memcached_start($t, 11211);
$t->run();

$t->plan(13);

###############################################################################

# A valid session started from $ip; returns the browser and the uid (empty
# if the second request did not find the session valid).
sub owner {
	my ($ip) = @_;
	my $b = browser(ip => $ip);
	$b->get('/');
	my $v = session_vars($b->get('/'));
	return ($b, ($v->{status} // '') eq 'valid' ? $v->{uid} // '' : '');
}

# nginx keeps the mapped form in $remote_addr: the case under test

like(browser(ip => '::ffff:10.0.0.1')->get('/'),
	qr/^X-Addr: \[::ffff:10\.0\.0\.1\]\r$/m, 'remote_addr is mapped');

# mapped, same /24: the same client

my ($b, $uid) = owner('::ffff:10.0.0.1');
like($uid, qr/^[0-9a-f]{32}\z/, 'mapped: session valid for its owner');
my $v = session_vars($b->clone(ip => '::ffff:10.0.0.200')->get('/'));
is($v->{status}, 'valid', 'mapped same /24: valid');
is($v->{uid}, $uid, 'mapped same /24: same uid');

# the plain IPv4 form of a neighbour: the same client too

($b, $uid) = owner('::ffff:10.0.0.1');
$v = session_vars($b->clone(ip => '10.0.0.7')->get('/'));
is($v->{status}, 'valid', 'plain v4 same /24: valid');
is($v->{uid}, $uid, 'plain v4 same /24: same uid');

# mapped, another /24 (but the same /64 as IPv6): another client

($b, $uid) = owner('::ffff:10.0.0.1');
$v = session_vars($b->clone(ip => '::ffff:10.0.1.1')->get('/'));
is($v->{status}, 'violation', 'mapped other /24: violation');
is($v->{violation}, 'fingerprint', 'mapped other /24: reason');

# the other way round: started from plain IPv4, seen mapped

($b, $uid) = owner('10.0.0.1');
$v = session_vars($b->clone(ip => '::ffff:10.0.0.9')->get('/'));
is($v->{uid}, $uid, 'plain then mapped same /24: same uid');
($b, $uid) = owner('10.0.0.1');
$v = session_vars($b->clone(ip => '::ffff:10.0.1.1')->get('/'));
is($v->{violation}, 'fingerprint', 'plain then mapped other /24: reason');

# a real IPv6 address still uses the IPv6 prefix

($b, $uid) = owner('2001:db8::1');
$v = session_vars($b->clone(ip => '2001:db8::ffff:1')->get('/'));
is($v->{uid}, $uid, 'v6 same /64: same uid');
($b, $uid) = owner('2001:db8::1');
$v = session_vars($b->clone(ip => '2001:db8:0:1::1')->get('/'));
is($v->{violation}, 'fingerprint', 'v6 other /64: reason');

# an IPv4-compatible address (::a.b.c.d, deprecated) is IPv6: compared on
# the IPv6 prefix, which its IPv4 part lies outside of

($b, $uid) = owner('::10.0.0.1');
$v = session_vars($b->clone(ip => '::10.0.1.1')->get('/'));
is($v->{uid}, $uid, 'compatible: compared as IPv6');

###############################################################################
