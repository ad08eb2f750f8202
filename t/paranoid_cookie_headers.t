#!/usr/bin/perl

# Tests for paranoid_session module: the session's cookies split over
# several Cookie header lines. Each line is read, in the order sent (nginx
# 1.23 and later link them in headers_in.cookie, 1.22 has only the header
# list), so the token and the nonce are found in whichever line holds
# them, and where a name repeats the first line's value is the one used.

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
        add_header X-Violation "[$paranoid_session_violation]" always;

        location / {
            paranoid_session on;
            # a new nonce on every request: each one must present the last
            paranoid_nonce_timeout 0;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');

memcached_start($t, 11211);
$t->run();

$t->plan(13);

###############################################################################

my $b = browser();
my $v = session_vars($b->get('/'));
is($v->{status}, 'new', 'new session');
my $uid = $v->{uid};

# GET / with these Cookie lines built from the browser's current cookies;
# the browser keeps the cookies of the response.
sub lines {
	my (@lines) = @_;
	my ($tok, $nonce) = map { $b->cookie($_) } qw/ sessionid sessionnonce /;
	s/TOKEN/$tok/g, s/NONCE/$nonce/g for @lines;
	return session_vars($b->get('/', cookies => {},
		headers => [ map { "Cookie: $_" } @lines ]));
}

$v = lines('sessionid=TOKEN', 'sessionnonce=NONCE');
is($v->{status}, 'valid', 'token, then nonce on a second line');
is($v->{uid}, $uid, 'token, then nonce: same session');

$v = lines('sessionnonce=NONCE', 'theme=dark; sessionid=TOKEN');
is($v->{status}, 'valid', 'nonce, then token on a second line');
is($v->{uid}, $uid, 'nonce, then token: same session');

$v = lines('a=1', 'b=2; c=3', 'sessionid=TOKEN', 'd=4', 'sessionnonce=NONCE');
is($v->{status}, 'valid', 'token and nonce among five lines');
is($v->{uid}, $uid, 'five lines: same session');

# the first line wins: a nonce two renewals old (past paranoid_nonce_window
# 1) before the current one is a violation

my $stale = $b->cookie('sessionnonce');
lines('sessionid=TOKEN; sessionnonce=NONCE') for 1 .. 2;
$v = session_vars($b->get('/', cookies => {}, keep => 0, headers => [
	'Cookie: sessionid=' . $b->cookie('sessionid'),
	"Cookie: sessionnonce=$stale",
	'Cookie: sessionnonce=' . $b->cookie('sessionnonce') ]));
is($v->{status}, 'violation', 'stale nonce on the first line: violation');
is($v->{violation}, 'nonce', 'stale nonce on the first line: reason');

# a token the store does not know, on the first line, is the one used

$b = browser();
$uid = session_vars($b->get('/'))->{uid};
my $forged = 'A' x 43;
$v = lines("sessionid=$forged", 'sessionid=TOKEN; sessionnonce=NONCE');
is($v->{status}, 'new', 'unknown token on the first line: new session');
isnt($v->{uid}, $uid, 'unknown token on the first line: another uid');

$b = browser();
$uid = session_vars($b->get('/'))->{uid};
$v = lines('sessionid=TOKEN', "sessionid=$forged; sessionnonce=NONCE");
is($v->{status}, 'valid', 'real token on the first line: valid');
is($v->{uid}, $uid, 'real token on the first line: same session');

###############################################################################
