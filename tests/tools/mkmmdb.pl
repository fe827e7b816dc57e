#!/usr/bin/perl
# tests/tools/mkmmdb.pl - builds a small MaxMind DB (MMDB) from a TSV table,
# for tests and the demo. Never used with third-party data.
#
# Usage:
#   perl tests/tools/mkmmdb.pl [--country] [--no-alias] [--ipv4]
#        [--epoch N] IN.tsv OUT.mmdb
# e.g.
#   perl tests/tools/mkmmdb.pl tests/fixtures/geo/networks.tsv /tmp/t.mmdb
#
# IN.tsv: one network per line, tab-separated (blank lines and lines starting
# with '#' are ignored):
#   NETWORK  LAT  LON  CC  CONTINENT  [CITY]
# NETWORK is CIDR (IPv4 or IPv6). LAT/LON are degrees; "-" for both makes a
# country-only record (no "location" key), as in GeoLite2-Country. CC is an
# ISO 3166 alpha-2 code, CONTINENT a MaxMind continent code (AF AN AS EU NA
# OC SA). CITY (optional) goes to city.names.en. Records follow the
# GeoLite2-City layout: location.{latitude,longitude}, country.iso_code,
# continent.code.
#
# Options:
#   --country   write every record country-only (database_type
#               "GSLB-Test-Country" instead of "GSLB-Test-City")
#   --no-alias  do not alias ::ffff:0:0/96, 2001::/32 and 2002::/16 to the
#               IPv4 tree (some databases are built that way)
#   --ipv4      write an IPv4-only tree (ip_version 4); IPv6 rows are skipped
#   --epoch N   build_epoch in the metadata (default 1700000000)
#
# Networks are inserted widest first (then in file order), so a narrow
# network inside a wider one keeps its own data. Output is deterministic:
# fixed build epoch, and the script re-runs itself with a fixed Perl hash
# seed so that map keys serialize in the same order every time.
# Exit status 0, or 1 with a message naming the file and line.
use strict;
use warnings;

BEGIN {
	if (!defined $ENV{PERL_HASH_SEED} || $ENV{PERL_HASH_SEED} ne '0') {
		$ENV{PERL_HASH_SEED} = '0';
		$ENV{PERL_PERTURB_KEYS} = '0';
		exec($^X, $0, @ARGV) or die "mkmmdb: cannot re-exec $^X: $!\n";
	}
}

# Any uncaught error: its message, exit status 1.
$SIG{__DIE__} = sub { return if $^S; print STDERR $_[0]; exit 1; };

use Getopt::Long;
use MaxMind::DB::Writer::Tree;

my ($country_only, $no_alias, $ipv4, $epoch) = (0, 0, 0, 1700000000);
GetOptions('country' => \$country_only, 'no-alias' => \$no_alias,
	'ipv4' => \$ipv4, 'epoch=i' => \$epoch)
	or die "usage: mkmmdb.pl [--country] [--no-alias] [--ipv4] [--epoch N] IN.tsv OUT.mmdb\n";
@ARGV == 2
	or die "usage: mkmmdb.pl [--country] [--no-alias] [--ipv4] [--epoch N] IN.tsv OUT.mmdb\n";
my ($in, $out) = @ARGV;

my %types = (
	city => 'map', continent => 'map', country => 'map', location => 'map',
	names => 'map', code => 'utf8_string', iso_code => 'utf8_string',
	en => 'utf8_string', latitude => 'double', longitude => 'double',
	accuracy_radius => 'uint16',
);

sub bad { my ($line, $msg) = @_; die "mkmmdb: $in:$line: $msg\n"; }

open(my $fh, '<', $in) or die "mkmmdb: $in: $!\n";
my @rows;
while (my $l = <$fh>) {
	chomp $l;
	$l =~ s/\r$//;
	next if $l =~ /^\s*(#|$)/;
	my @f = split /\t/, $l;
	bad($., "expected 5 or 6 tab-separated fields, got " . scalar(@f))
		if @f < 5 || @f > 6;
	my ($net, $lat, $lon, $cc, $cont, $city) = @f;
	my ($addr, $len) = $net =~ m{^([0-9A-Fa-f:.]+)/(\d+)$}
		or bad($., "network '$net' is not ADDR/LEN");
	my $v6 = $addr =~ /:/;
	bad($., "prefix length $len too long for '$net'")
		if $len > ($v6 ? 128 : 32);
	bad($., "country '$cc' is not two upper-case letters")
		unless $cc =~ /^[A-Z]{2}$/;
	bad($., "continent '$cont' is not one of AF AN AS EU NA OC SA")
		unless $cont =~ /^(AF|AN|AS|EU|NA|OC|SA)$/;
	my $rec = { country => { iso_code => $cc }, continent => { code => $cont } };
	if ($lat ne '-' || $lon ne '-') {
		for ([$lat, 90, 'latitude'], [$lon, 180, 'longitude']) {
			my ($v, $max, $what) = @$_;
			bad($., "$what '$v' is not a number in -$max..$max")
				unless $v =~ /^-?\d+(\.\d+)?$/ && abs($v) <= $max;
		}
		$rec->{location} = { latitude => $lat + 0.0,
			longitude => $lon + 0.0, accuracy_radius => 20 }
			unless $country_only;
	}
	$rec->{city} = { names => { en => $city } }
		if defined $city && $city ne '' && !$country_only;
	next if $ipv4 && $v6;
	push @rows, { net => $net, len => $v6 ? $len : $len + 96,
		line => $., rec => $rec };
}
close($fh);
bad($., "no networks") unless @rows;

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version => $ipv4 ? 4 : 6,
	record_size => 24,
	database_type => $country_only ? 'GSLB-Test-Country' : 'GSLB-Test-City',
	languages => ['en'],
	description => { en => "gslb test database from " . ($in =~ s{.*/}{}r) },
	map_key_type_callback => sub { $types{ $_[0] } },
	alias_ipv6_to_ipv4 => ($ipv4 || $no_alias) ? 0 : 1,
	# Test data lives in 127/8 and documentation ranges, which the
	# writer would otherwise drop silently.
	remove_reserved_networks => 0,
	merge_strategy => 'none',
);
$tree->_set_build_epoch($epoch);

# Widest first, then file order: with merge_strategy none the last insert
# wins, so narrower networks must come after the ones that contain them.
for my $r (sort { $a->{len} <=> $b->{len} || $a->{line} <=> $b->{line} } @rows) {
	eval { $tree->insert_network($r->{net}, $r->{rec}); 1 }
		or bad($r->{line}, "cannot insert '$r->{net}': $@");
}

my $tmp = "$out.tmp.$$";
open(my $o, '>:raw', $tmp) or die "mkmmdb: $tmp: $!\n";
$tree->write_tree($o);
close($o) or die "mkmmdb: $tmp: $!\n";
rename($tmp, $out) or die "mkmmdb: rename $tmp to $out: $!\n";
exit 0;
