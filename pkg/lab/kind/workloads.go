package kind

// BenchNamespace holds the bench pods and Services of a kind lab.
const BenchNamespace = "cnilab"
