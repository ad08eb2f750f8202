#!/usr/bin/perl

# The browser of make demo-check: headless Chromium driven through
# chromedriver's WebDriver HTTP API with Perl's core modules. Like a
# visitor, it clicks the demo page's own forms and buttons and reads what
# the page shows: a login, a theft under each policy, a logout, the replay
# of an old nonce within and after its window, the counters. A full-page
# screenshot of each step goes to SCREENSHOT_DIR.
#
# usage: demo-check.pl PAGE_URL CHROMEDRIVER_URL SCREENSHOT_DIR PROFILE_DIR

use warnings;
use strict;

use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw/ decode_base64 /;
use Time::HiRes qw/ sleep time /;
use Test::More;

my ($page, $driver, $shots, $profile) = @ARGV;
die "usage: demo-check.pl PAGE_URL CHROMEDRIVER_URL SCREENSHOT_DIR PROFILE_DIR\n"
	unless defined $profile;

my $http = HTTP::Tiny->new(timeout => 60);
my $json = JSON::PP->new->utf8->canonical;
my $ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
my $WAIT = 20;

###############################################################################

# One WebDriver command; dies with WebDriver's message when it fails.
sub wd {
	my ($method, $path, $body) = @_;
	my $res = $http->request($method, "$driver$path", {
		headers => { 'Content-Type' => 'application/json' },
		defined $body ? (content => $json->encode($body)) : (),
	});
	my $reply = eval { $json->decode($res->{content}) } || {};
	unless ($res->{success}) {
		my $why = ref $reply->{value} eq 'HASH'
			? $reply->{value}{message} : $res->{content};
		die "WebDriver $method $path: $res->{status} $why\n";
	}
	return $reply->{value};
}

my @args = ('--headless=new', '--disable-gpu', '--disable-dev-shm-usage',
	'--hide-scrollbars', '--no-first-run', '--no-default-browser-check',
	'--disable-extensions', '--lang=en-US', '--window-size=1280,900',
	"--user-data-dir=$profile");
push @args, '--no-sandbox' if $> == 0;

my $session = wd(POST => '/session', { capabilities => { alwaysMatch => {
	browserName => 'chrome',
	'goog:chromeOptions' => { binary => '/usr/bin/chromium', args => \@args },
}}})->{sessionId};
my $s = "/session/$session";

END {
	# not through wd(): END must not die
	$http->request('DELETE', "$driver/session/$session") if $session;
}

sub js { wd(POST => "$s/execute/sync", { script => shift, args => [ @_ ] }) }
sub cdp { wd(POST => "$s/goog/cdp/execute", { cmd => shift, params => shift || {} }) }

# The element for a CSS selector, or undef.
sub find {
	my ($css) = @_;
	my $e = eval { wd(POST => "$s/element",
		{ using => 'css selector', value => $css }) };
	return $e ? $e->{$ELEMENT} : undef;
}

# The text the page shows in an element ('' when hidden), or undef.
sub text {
	my $e = find(shift) // return undef;
	my $t = eval { wd(GET => "$s/element/$e/text") };
	return $t;
}

sub shown {
	my $e = find(shift) // return 0;
	return eval { wd(GET => "$s/element/$e/displayed") } ? 1 : 0;
}

sub click {
	my ($css) = @_;
	my $e = find($css) // die "no $css on the page\n";
	wd(POST => "$s/element/$e/click", {});
}

sub type_into {
	my ($css, $text) = @_;
	my $e = find($css) // die "no $css on the page\n";
	wd(POST => "$s/element/$e/clear", {});
	wd(POST => "$s/element/$e/value", { text => $text });
}

# Polls until the element's text matches; returns the text seen last.
sub wait_text {
	my ($css, $re, $wait) = @_;
	my $t;
	my $end = time() + ($wait // $WAIT);
	while (time() < $end) {
		$t = text($css);
		return $t if defined $t && $t =~ $re;
		sleep 0.2;
	}
	return $t;
}

# When the page was served (nginx's $msec), to tell one page load from the
# next.
sub served {
	return eval { js('var f = document.getElementById("facts");'
		. ' return document.readyState === "complete" && f ? f.dataset.now : null;') };
}

# Clicks something that loads the page again (through the redirects of the
# stand-in application or of an attack) and waits for the new page.
sub click_and_load {
	my ($css) = @_;
	my $before = served() // '';
	click($css);
	my $end = time() + $WAIT;
	while (time() < $end) {
		my $now = served();
		return 1 if defined $now && $now ne $before;
		sleep 0.1;
	}
	die "clicking $css loaded no new page\n";
}

sub open_page {
	wd(POST => "$s/url", { url => shift });
	my $end = time() + $WAIT;
	sleep 0.1 until defined served() || time() > $end;
}

# A screenshot of the whole page, laptop width or phone width, once the
# counters are in.
sub shot {
	my ($name, $phone) = @_;
	my $end = time() + $WAIT;
	sleep 0.1 until js('return document.getElementById("metrics").dataset.loaded || null;')
		|| time() > $end;
	my ($w, $h) = $phone ? (390, 844) : (1280, 900);
	cdp('Emulation.setDeviceMetricsOverride', { width => $w, height => $h,
		deviceScaleFactor => 1, mobile => $phone ? JSON::PP::true
		: JSON::PP::false });
	my $height = js('return Math.ceil(document.documentElement.scrollHeight);');
	my $png = cdp('Page.captureScreenshot', { format => 'png',
		captureBeyondViewport => JSON::PP::true,
		clip => { x => 0, y => 0, width => $w, height => $height,
			scale => 1 } })->{data};
	cdp('Emulation.clearDeviceMetricsOverride');
	my $file = "$shots/$name.png";
	open my $fh, '>:raw', $file or die "$file: $!\n";
	print $fh decode_base64($png);
	close $fh;
	note("screenshot $file");
}

# A screenshot of one element.
sub shot_of {
	my ($name, $css) = @_;
	my $e = find($css) // die "no $css on the page\n";
	my $file = "$shots/$name.png";
	open my $fh, '>:raw', $file or die "$file: $!\n";
	print $fh decode_base64(wd(GET => "$s/element/$e/screenshot"));
	close $fh;
	note("screenshot $file");
}

sub login {
	my ($user) = @_;
	type_into('#login-user', $user);
	click_and_load('#login-submit');
}

###############################################################################

# 1. A first visit: a new session, nobody logged in.

open_page("$page/");
is(text('#status'), 'new', 'first visit: a new session');
like(text('#uid'), qr/^[0-9a-f]{32}$/, 'first visit: its uid');
is(text('#user'), '', 'first visit: nobody logged in');
like(text('#absolute-deadline'), qr/\(\d+:\d\d left, 600 s after it began at \d\d:\d\d:\d\d\)$/,
	'first visit: the absolute deadline, from when the session began');
my $began = (text('#absolute-deadline') =~ /began at (\S+)\)/)[0] // '';
shot('01-first-visit');
shot('01-first-visit-phone', 1);

# 2. The login, through the stand-in application.

login('alice');
is(text('#status'), 'valid', 'login: the session is valid');
is(text('#user'), 'alice', 'login: alice is the bound user');
like(text('#did-note'), qr/login user=alice/, 'login: the page says how');
like(text('#absolute-deadline'), qr/began at \Q$began\E\)$/,
	'login: the session still began when it did');
my $uid = text('#uid');
shot('02-logged-in');

# 3. The theft under clear: the attacker goes on with a fresh, empty
# session; the visitor's session ended too.

click_and_load('#theft-clear');
ok(shown('#theft-result'), 'theft, clear: the result is shown');
is(text('#a-policy'), 'clear', 'theft, clear: under clear');
is(text('#a-status'), 'violation', 'theft, clear: a violation');
is(text('#a-violation'), 'fingerprint', 'theft, clear: of the fingerprint');
is(text('#a-code'), '200', 'theft, clear: the attacker goes on');
is(text('#a-user'), 'nobody logged in', 'theft, clear: as nobody');
like(text('#a-uid'), qr/^[0-9a-f]{32}$/, 'theft, clear: in a fresh session');
isnt(text('#a-uid'), $uid, 'theft, clear: not the victim\'s');
like(text('#theft-why'), qr/another address with another User-Agent/,
	'theft, clear: the page says why');
is(text('#y-status'), 'new', 'theft, clear: the visitor gets a new session');
is(text('#user'), '', 'theft, clear: the visitor is logged out');
isnt(text('#uid'), $uid, 'theft, clear: the old session is gone');
is(wait_text('#m-violations-fingerprint-clear', qr/^1$/), '1',
	'theft, clear: counted as a fingerprint violation under clear');
like(text('#m-last'), qr/fingerprint violation, clear \+1/,
	'theft, clear: the counters say what the click did');
shot('03-theft-clear');

# 4. The theft under deny: 403, the session ended.

login('alice');
is(text('#user'), 'alice', 'theft, deny: logged in again');
$uid = text('#uid');
click_and_load('#theft-deny');
is(text('#a-policy'), 'deny', 'theft, deny: under deny');
is(text('#a-status'), 'violation', 'theft, deny: a violation');
is(text('#a-violation'), 'fingerprint', 'theft, deny: of the fingerprint');
is(text('#a-code'), '403', 'theft, deny: 403 for the attacker');
is(text('#a-uid'), 'none', 'theft, deny: with no session');
is(text('#y-status'), 'new', 'theft, deny: the visitor gets a new session');
is(text('#user'), '', 'theft, deny: the visitor is logged out');
is(wait_text('#m-violations-fingerprint-deny', qr/^1$/), '1',
	'theft, deny: counted under deny');
shot('04-theft-deny');

# 5. The theft under log: the attacker is in, as alice; the visitor goes on.

login('alice');
$uid = text('#uid');
click_and_load('#theft-log');
is(text('#a-policy'), 'log', 'theft, log: under log');
is(text('#a-status'), 'violation', 'theft, log: a violation');
is(text('#a-violation'), 'fingerprint', 'theft, log: of the fingerprint');
is(text('#a-code'), '200', 'theft, log: the attacker goes on');
is(text('#a-user'), 'alice', 'theft, log: as alice');
is(text('#a-uid'), $uid, 'theft, log: in the victim\'s session');
is(text('#y-status'), 'valid', 'theft, log: the visitor\'s session goes on');
is(text('#user'), 'alice', 'theft, log: the visitor is still alice');
is(text('#uid'), $uid, 'theft, log: same session');
is(wait_text('#m-violations-fingerprint-log', qr/^1$/), '1',
	'theft, log: counted under log');
shot('05-theft-log');

# 6. The logout.

click_and_load('#logout');
is(text('#status'), 'new', 'logout: a new session');
is(text('#user'), '', 'logout: nobody logged in');
isnt(text('#uid'), $uid, 'logout: the session ended');
like(text('#did-note'), qr/logout/, 'logout: the page says how');
shot('06-logged-out');

# 7. The replay of an old nonce: copied, renewed in the browser, replayed
# within the window (accepted) and after it (refused).

login('alice');
$uid = text('#uid');
click_and_load('#copy');
like(text('#copy-state'), qr/^Copied/, 'replay: the cookies are copied');

# reloads as the visitor would, until one of them renews the nonce
for (1 .. 30) {
	last if text('#resp-nonce') eq 'new nonce cookie';
	sleep 1;
	click_and_load('#reload');
}
is(text('#resp-nonce'), 'new nonce cookie', 'replay: the nonce was renewed');
like(text('#copy-state'), qr/holds the previous one/,
	'replay: the copy holds the previous nonce');
cmp_ok(text('#life-renewals'), '>=', 1, 'replay: the renewal in the history');

click_and_load('#replay-copy');
ok(shown('#replay-result'), 'replay in the window: the result is shown');
is(text('#r-status'), 'valid', 'replay in the window: accepted');
is(text('#r-code'), '200', 'replay in the window: 200');
like(text('#replay-why'), qr/^Accepted/, 'replay in the window: the page says why');
is(text('#uid'), $uid, 'replay in the window: the visitor\'s session goes on');
shot('07-replay-in-window');

# the page tells the visitor when the window has passed
like(wait_text('#copy-state', qr/window has passed/), qr/window has passed/,
	'replay: the window passes');
click_and_load('#replay-copy');
is(text('#r-status'), 'violation', 'replay after the window: a violation');
is(text('#r-violation'), 'nonce', 'replay after the window: of the nonce');
is(text('#r-code'), '403', 'replay after the window: 403 (deny)');
like(text('#replay-why'), qr/^Refused/, 'replay after the window: the page says why');
is(text('#status'), 'new', 'replay after the window: the session ended');
is(wait_text('#m-violations-nonce-deny', qr/^1$/), '1',
	'replay after the window: counted as a nonce violation under deny');
shot('08-replay-refused');

# 8. The counters of the whole visit: four logins, one logout, four
# thefts caught (three stolen cookies, one old nonce), none other.

is(text('#m-application-login'), '4', 'counters: 4 logins');
is(text('#m-application-logout'), '1', 'counters: 1 logout');
is(text('#m-sessions-rotated'), '4', 'counters: 4 tokens rotated by the logins');
cmp_ok(text('#m-sessions-destroyed'), '>=', 1, 'counters: the logout destroyed');
is(text('#m-requests-violation'), '4', 'counters: 4 violating requests');
my %caught = map { $_ => 1 }
	qw/ fingerprint-clear fingerprint-deny fingerprint-log nonce-deny /;
for my $r (qw/ fingerprint nonce secure_key /) {
	for my $a (qw/ clear deny log /) {
		is(text("#m-violations-$r-$a"), $caught{"$r-$a"} || 0,
			"counters: $r violations under $a");
	}
}
shot_of('09-counters', '#counters');

# 9. With DEMO_CHECK_SLOW=1 (about 3 minutes more): a timed token cycle,
# then the idle timeout.

if ($ENV{DEMO_CHECK_SLOW}) {
	login('alice');
	$uid = text('#uid');
	sleep 62;
	click_and_load('#reload');
	is(text('#status'), 'rotated', 'cycle: the token was cycled');
	is(text('#resp-token'), 'new token cookie', 'cycle: a new token cookie');
	is(text('#uid'), $uid, 'cycle: same session');
	is(text('#user'), 'alice', 'cycle: same user');
	is(text('#life-cycles'), '1', 'cycle: in the history');
	like(text('#status-note'), qr/timed cycling/, 'cycle: the page says why');
	is(wait_text('#m-sessions-cycled', qr/^1$/), '1', 'cycle: counted');
	shot('10-token-cycled');

	like(wait_text('#idle-deadline', qr/passed/, 150), qr/passed/,
		'idle: the page says the idle timeout passed');
	sleep 2;
	click_and_load('#reload');
	is(text('#status'), 'expired', 'idle: the session expired');
	is(text('#user'), '', 'idle: nobody logged in');
	isnt(text('#uid'), $uid, 'idle: a new session');
	is(wait_text('#m-sessions-expired_idle', qr/^1$/), '1', 'idle: counted');
	shot('11-expired');
}

done_testing();

###############################################################################
