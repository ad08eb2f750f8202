#!/usr/bin/perl

# Tests for paranoid_session module: no session fixation. A token the store
# does not know, well-formed or not, is never adopted: the client gets a new
# session with a token of the module's own, and the presented value stays
# unknown afterwards. Malformed, oversized and non-canonical values count as
# absent.

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

        location / {
            paranoid_session on;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');

memcached_start($t, 11211);
$t->run();

$t->plan(30);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;
my @B64 = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_');

sub random_b64 { join '', map { $B64[int rand 64] } 1 .. $_[0] }

# A canonical 43-char token: its last character encodes 2 bits of padding,
# which must be zero.
sub invented_token { random_b64(42) . $B64[4 * int rand 16] }

# Presents $token (with $nonce, or a plausible one) from the browsers' User
# Agent; checks that it was not adopted.
sub not_adopted {
	my ($token, $name, $nonce) = @_;
	my $r = get_with('/', 'User-Agent: ParanoidBrowser/1.0',
		cookie_header(sessionid => $token,
			sessionnonce => $nonce // random_b64(22)));
	my $v = session_vars($r);
	my $new = session_cookie($r) // '';
	like($r, qr/^HTTP\/1\.1 200 /, "$name: served");
	ok(($v->{status} // '') eq 'new' && $new =~ /^$TOKEN\z/ && $new ne $token,
		"$name: new session with a token of its own");
	return ($new, $v->{uid});
}

# an invented, well-formed token

my $invented = invented_token();
my ($issued, $uid) = not_adopted($invented, 'invented');
my ($again, $uid2) = not_adopted($invented, 'invented twice');
isnt($again, $issued, 'invented twice: another new token');
isnt($uid2, $uid, 'invented twice: another uid');

# the issued token works; the invented one still does not

my $b = browser();
$b->get('/');
my $real = $b->cookie('sessionid') // '';
my $real_uid = session_vars($b->get('/'))->{uid};
is(session_vars($b->last_response)->{status}, 'valid', 'issued token valid');

# malformed values count as absent

not_adopted(substr($real, 0, 42), 'one char short');
not_adopted($real . 'A', 'one char long');
not_adopted(substr($real, 0, 42) . '+', 'plain base64 alphabet');
not_adopted(substr($real, 0, 41) . '/A', 'slash');
not_adopted($real . '=', 'padding');
not_adopted('A' x 4096, 'oversized');
not_adopted('', 'empty');
not_adopted("$real$real", 'token twice');

# non-canonical: the same 32 bytes with the unused low bits of the last
# character set; a lenient decoder would take it for the real token

my ($last) = grep { $B64[$_] eq substr($real, -1) } 0 .. 63;
my $noncanonical = substr($real, 0, 42) . $B64[($last // 0) + 1];
my ($nc_token, $nc_uid) = not_adopted($noncanonical, 'non-canonical',
	$b->cookie('sessionnonce'));
isnt($nc_uid, $real_uid, 'non-canonical: not the real session');

# other places and spellings are not the token

my $r = http_get("/?sessionid=$real");
is(session_vars($r)->{status}, 'new', 'token in the query: not read');
$r = get_with('/', "Cookie: SESSIONID=$real");
is(session_vars($r)->{status}, 'new', 'other case: not read');

# the real token still works after all this

my $v = session_vars($b->get('/'));
is($v->{status}, 'valid', 'real token still valid');
is($v->{uid}, $real_uid, 'real token: same uid');

###############################################################################
