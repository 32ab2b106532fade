# Evaluates a whole gitlab.rb the way omnibus does (as Ruby, top to bottom) against a stand-in
# for omnibus's settings objects, and prints the resulting gitlab_rails['env'] as JSON.
# Usage: ruby eval_env.rb GITLAB_RB [ENVDIR]
# With ENVDIR, also renders the env like `gitlab-ctl reconfigure` does: one file per variable.
require 'json'
require 'yaml' # gitlab.rb files use YAML.load for LDAP settings
require 'fileutils'

# Like Gitlab::ConfigMash under auto_vivify: reading a missing key creates a nested hash, so
# `gitlab_rails['env']['KEY'] = 'v'` works without an earlier `gitlab_rails['env'] = {}`.
class AutoVivifyingHash < Hash
  def initialize
    super { |hash, key| hash[key] = ::AutoVivifyingHash.new }
  end
end

# Every top-level name in gitlab.rb (gitlab_rails, registry, nginx, ...) is a settings hash;
# a call with arguments (external_url 'x', roles [...]) records its value.
class OmnibusSettingsStandIn
  def initialize
    @settings = Hash.new { |hash, key| hash[key] = AutoVivifyingHash.new }
  end

  def __settings
    @settings
  end

  def method_missing(name, *args, &_block)
    return @settings[name.to_s] if args.empty?

    @settings[name.to_s] = args.length == 1 ? args.first : args
  end

  def respond_to_missing?(*)
    true
  end
end

path = ARGV.fetch(0)
context = OmnibusSettingsStandIn.new
context.instance_eval(File.read(path), path)
env = context.__settings['gitlab_rails']['env']
result = env.to_h { |key, value| [key.to_s, value.to_s] }

if (envdir = ARGV[1])
  FileUtils.mkdir_p(envdir)
  Dir.children(envdir).each { |name| File.delete(File.join(envdir, name)) }
  result.each { |key, value| File.write(File.join(envdir, key), value) }
end

puts JSON.generate(result)
