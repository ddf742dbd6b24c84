"""End-to-end harness: spoken input, the real worker process, and (under a private network
namespace) the whole stack. The pieces here also work outside the namespace."""
